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


def file_stamp(node: GraphNode) -> dict[str, int]:
    """Size and mtime of the exported file: a cheap check that it is still ours."""
    st = node.target.resolve_path(node.spec.path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def export_is_current(node: GraphNode, memo: dict) -> bool:
    """True when the exported file still holds what the memo says. Size and mtime
    unchanged is trusted (a no-op rebuild must not re-hash a large export); otherwise
    the content digest decides."""
    path = node.target.resolve_path(node.spec.path)
    if memo.get("digest") is None or not path.exists():
        return False
    stamp = memo.get("stamp")
    if stamp is not None and stamp == file_stamp(node):
        return True
    return file_digest(path) == memo["digest"]
