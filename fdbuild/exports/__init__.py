"""Export formats, by name: each a module that turns rows into a training-ready file.

Exports read the node's input rows (from the artifact store) and write one file
atomically; the same rows always give the same bytes.
"""

from __future__ import annotations

from typing import Any

from fdbuild.errors import SpecError
from fdbuild.registry import load

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


def get_exporter(fmt: str) -> Any:
    return load(_BUILTIN[fmt])


def validate_export(node: Any, columns: list[str]) -> None:
    """Load-time check: the columns an export needs exist upstream."""
    cls = get_exporter(node.spec.format)
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
