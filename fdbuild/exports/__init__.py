"""Export formats, by name: each a module that turns rows into a training-ready file.

Exports read the node's input rows (from the artifact store) and write one file
atomically; the same rows always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.exports.base import Exporter
from fdbuild.plugins import Kind, PluginError, resolve

_BUILTIN = {
    "jsonl": "fdbuild.exports.jsonl:JsonlExport",
    "parquet": "fdbuild.exports.parquet:ParquetExport",
    "sft_jsonl": "fdbuild.exports.sft:SftExport",
    "dpo_jsonl": "fdbuild.exports.dpo:DpoExport",
    "mlx_jsonl": "fdbuild.exports.mlx:MlxExport",
    "multitask_jsonl": "fdbuild.exports.multitask:MultitaskExport",
}


class PathError(ValueError):
    """An export ``path`` the format cannot write (reported at the ``path`` key)."""


KIND = Kind("exporter", Exporter, _BUILTIN)


def get_exporter(fmt: str, base_dir: Path | None = None) -> Any:
    """The exporter class ``fmt`` names: a built-in, or a plugin (see ``fdbuild.plugins``;
    ``base_dir``, the target file's folder, anchors ``./file.py:Name``)."""
    return resolve(KIND, fmt, base_dir)


def exporter_class(node: Any) -> Any:
    """The exporter class of an export node (its format, from its target's folder)."""
    return get_exporter(node.spec.format, node.target.base_dir)


def export_version(node: Any) -> dict[str, Any]:
    """Key parts of a plugin exporter (its version, and a file's source digest); empty
    for a built-in, whose export keys stay as they were."""
    if node.spec.format in _BUILTIN:
        return {}
    from fdbuild.plugins import keyed_version

    return {"format_version": keyed_version(exporter_class(node))}


def validate_export(node: Any, columns: list[str]) -> None:
    """Load-time check: the columns an export needs exist upstream."""
    try:
        cls = exporter_class(node)
    except PluginError as exc:
        where = node.where("format")
        raise SpecError(f"{where}: nodes.{node.ref.node}.format: {exc.message}") from None
    try:
        needed = cls.required_columns(node.spec)
    except PathError as exc:
        raise SpecError(f"{node.where('path')}: {exc}") from None
    except ValueError as exc:
        raise SpecError(f"{node.where('options')}: {exc}") from None
    for col in needed:
        if col not in columns:
            shown = ", ".join(c for c in columns if not c.startswith("_"))
            raise SpecError(
                f"{node.where('format')}: export '{node.ref.node}' ({node.spec.format}) "
                f"needs column '{col}', which its input does not have; columns available: {shown}"
            )
