"""What changed between two runs: ``runs`` compares parameters, nodes and metrics, ``rows``
the rows of one node in both runs, ``scan`` reads the two artifacts side by side."""
