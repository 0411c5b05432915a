"""Importers turn public datasets into fdbuild ``source`` files (JSONL plus any database).

They run once, outside the build graph: their output is an ordinary, committed input file
whose digest the lock records, so a build never depends on a download or a sampler.
"""

from __future__ import annotations

from fdbuild.importers.wikisql import ImportReport, import_wikisql, write_release

__all__ = ["ImportReport", "import_wikisql", "write_release"]
