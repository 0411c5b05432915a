"""The exporter contract, and the JSON-lines writer most formats share."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fdbuild import columns as C
from fdbuild.store.atomic import publish, temp_path_for


class Exporter:
    """Subclasses set ``fmt`` and implement ``records`` (or ``write``)."""

    fmt: str = ""
    known_options: frozenset[str] = frozenset()

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.options = dict(spec.options)

    @classmethod
    def required_columns(cls, spec: Any) -> list[str]:
        unknown = set(spec.options) - cls.known_options
        if unknown:
            raise ValueError(
                f"unknown export option(s) {', '.join(sorted(unknown))} for "
                f"{spec.format} (options: {', '.join(sorted(cls.known_options)) or 'none'})"
            )
        return list(spec.columns or [])

    def records(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def files(self, path: Path) -> dict[str, Path]:
        """The files ``write`` produces, by name: the export's digest covers all of them.
        Most formats write the one file at ``path``."""
        return {path.name: path}

    def planned_files(self, path: Path) -> list[Path]:
        """Every file ``write`` may create, replace or remove for ``path``, known before
        it runs (the load-time path check refuses each that would hit a project or input
        file). Default: ``files``."""
        return list(self.files(path).values())

    def fields(self, schema: Any) -> list[str]:
        """The top-level fields (or columns) of each record, for the manifest."""
        return default_columns(self.spec, list(schema.names))

    def manifest_extra(self) -> dict[str, Any]:
        """Format-specific manifest entries, known after ``write`` (e.g. split sizes)."""
        return {}

    def write(self, rows: Iterable[dict[str, Any]], path: Path, schema: Any) -> int:
        """Write atomically; returns the number of records written."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(path)
        count = 0
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                for record in self.records(rows):
                    fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False))
                    fh.write("\n")
                    count += 1
            publish(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return count


def default_columns(spec: Any, available: list[str]) -> list[str]:
    """Explicit ``columns:``, else ``_id`` and every non-internal column."""
    if spec.columns:
        return list(spec.columns)
    return [C.ID] + [c for c in available if not C.is_internal(c)]
