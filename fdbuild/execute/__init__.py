"""Running a build: each node kind has a module; ``build`` walks the graph."""
