"""``fdbuild report``: one self-contained HTML page (inline SVG charts, no scripts, no
network) of a run chain: ``data`` gathers, ``svg`` draws, ``html`` lays out."""
