"""One module per node kind: its recipe (everything that determines its output) and its run
over the rows of its inputs. The engine (``fdbuild.execute.engine``) finds a kind here by
name and never branches on it."""
