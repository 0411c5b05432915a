"""Plain-text renderings of run records (log, show); pure functions of the records."""
