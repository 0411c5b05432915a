"""State under ``.fdbuild/``: the row cache, the artifacts, the run records."""
