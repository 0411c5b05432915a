"""``export`` nodes: write the input rows to a training-ready file, atomically."""

from __future__ import annotations

from typing import Any

from fdbuild.exports import get_exporter
from fdbuild.keys import file_digest
from fdbuild.spec.graph import GraphNode


def export_recipe(build: Any, node: GraphNode) -> dict[str, Any]:
    spec = node.spec
    return {
        "kind": "export",
        "format": spec.format,
        "path": build.ctx.path_for_record(node.target.resolve_path(spec.path)),
        "columns": spec.columns,
        "options": spec.options or None,
    }


def run_export(build: Any, node: GraphNode, input_digest: str) -> tuple[str, int]:
    """Returns (file digest, records written)."""
    path = node.target.resolve_path(node.spec.path)
    exporter = get_exporter(node.spec.format)(node.spec)
    rows = build.outputs.rows(input_digest)
    count = exporter.write(rows, path, build.outputs.schema(input_digest))
    return file_digest(path), count


def export_is_current(node: GraphNode, digest: str | None) -> bool:
    path = node.target.resolve_path(node.spec.path)
    return digest is not None and path.exists() and file_digest(path) == digest
