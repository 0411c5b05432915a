"""``source`` nodes: a file's rows, each given an ``_id``, filtered by ``where:`` and
``sample:`` (``fdbuild/sampling.py``).

The node memo is keyed by the file's digest (a dataset folder's: its data files'), so a
no-op rebuild costs one streamed hash of the file and nothing else. ``split``, ``where``
and ``sample`` join the recipe only when set, so the keys of sources without them are
the ones earlier versions computed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import xxhash

from fdbuild import columns as C
from fdbuild.errors import SpecError
from fdbuild.execute.context import NodeStats
from fdbuild.execute.streams import Input, Sink
from fdbuild.keys import HASH_PREFIX, canonical_json, file_digest
from fdbuild.nodes.base import NodeKind, Outcome
from fdbuild.sampling import compile_where, in_fraction, smallest_n
from fdbuild.sources import read_source, source_format
from fdbuild.spec.graph import GraphNode

if TYPE_CHECKING:
    import pyarrow as pa


def source_recipe(ctx: Any, node: GraphNode) -> dict[str, Any]:
    spec = node.spec
    path = node.target.resolve_path(spec.path)
    if not path.exists():
        raise SpecError(f"{node.where('path')}: source file not found: {path}")
    fmt = source_format(path, spec.format)
    recipe: dict[str, Any] = {
        "kind": "source",
        "path": ctx.path_for_record(path),
        "format": fmt,
        "id": spec.id,
        "file_digest": _digest(node, path, fmt),
    }
    if spec.split is not None:
        recipe["split"] = spec.split
    if spec.where:
        recipe["where"] = spec.where
    if spec.sample is not None:
        recipe["sample"] = spec.sample.model_dump(exclude_none=True)
    return recipe


def _digest(node: GraphNode, path: Any, fmt: str) -> str:
    if fmt != "hf":
        if path.is_dir():
            raise SpecError(f"{node.where('path')}: {path} is a folder; set 'format: hf'")
        return file_digest(path)
    from fdbuild.sources_hf import hf_digest, hf_files

    return hf_digest(hf_files(path, node.spec.split))


def read_table(node: GraphNode, recipe: dict[str, Any]) -> pa.Table:
    path = node.target.resolve_path(node.spec.path)
    table = read_source(path, recipe["format"], node.spec.split)
    id_col = node.spec.id
    if id_col is not None and id_col not in table.column_names:
        raise SpecError(f"{node.where('id')}: id column '{id_col}' is not in {path.name}")
    return table


def table_schema(table: pa.Table) -> pa.Schema:
    """The output schema: ``_id`` first, then the file's columns."""
    import pyarrow as pa

    return pa.schema([pa.field(C.ID, pa.string())] + [f for f in table.schema if f.name != C.ID])


def write_rows(node: GraphNode, table: pa.Table, writer: Any) -> int:
    """Stream the table's rows that pass ``where`` and ``sample``, each with its id, into
    ``writer``. Returns rows written. A sample of ``n`` reads the ids once first."""
    spec = node.spec
    where = _where(node)
    sample = spec.sample
    chosen: set[str] | None = None
    if sample is not None and sample.n is not None:
        ids = (rid for rid, row in _rows(node, table) if where is None or where(row))
        chosen = smallest_n(sample.seed, sample.n, ids)
    count = 0
    for rid, row in _rows(node, table):
        if chosen is not None:
            if rid not in chosen:
                continue
        else:
            if where is not None and not where(row):
                continue
            if sample is not None and not in_fraction(sample.seed, sample.fraction or 0.0, rid):
                continue
        count += 1
        row.pop(C.ID, None)
        writer.write({C.ID: rid, **row})
    return count


def _where(node: GraphNode) -> Any:
    if not node.spec.where:
        return None
    try:
        return compile_where(node.spec.where)
    except ValueError as exc:
        raise SpecError(f"{node.where('where')}: {exc}") from None


def _rows(node: GraphNode, table: pa.Table) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, row) for every row of the file; a duplicate id is an error naming both rows."""
    path = node.target.resolve_path(node.spec.path)
    id_col = node.spec.id
    seen: dict[str, int] = {}
    count = 0
    for batch in table.to_batches(max_chunksize=8192):
        for row in batch.to_pylist():
            count += 1
            rid = _row_id(row, id_col, path, count)
            if rid in seen:
                raise SpecError(_duplicate_message(node, path, rid, seen[rid], count, id_col))
            seen[rid] = count
            yield rid, row


def _row_id(row: dict[str, Any], id_col: str | None, path: Any, line: int) -> str:
    if id_col is None:
        return HASH_PREFIX + xxhash.xxh3_64_hexdigest(canonical_json(row).encode())
    value = row.get(id_col)
    if value is None or value == "":
        raise SpecError(f"{path}: row {line}: id column '{id_col}' is empty")
    return str(value)


def _duplicate_message(
    node: GraphNode, path: Any, rid: str, first: int, again: int, id_col: str | None
) -> str:
    if id_col is None:
        return (
            f"{path}: rows {first} and {again} are identical (same content hash {rid}); "
            f"remove the duplicate or name an 'id:' column ({node.where('id')})"
        )
    return (
        f"{path}: duplicate id '{rid}' in column '{id_col}' (rows {first} and {again}); "
        f"ids must be unique ({node.where('id')})"
    )


class SourceKind(NodeKind):
    """Reads its file(s); fast enough that its consumers wait for the artifact."""

    name = "source"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return source_recipe(build.ctx, node)

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        # in a thread: the teachers' identity lookups (HTTP) go on meanwhile
        table = await asyncio.to_thread(read_table, node, recipe)
        writer = sink.open(table_schema(table))
        stats.rows_in = await asyncio.to_thread(write_rows, node, table, writer)
        stats.computed = stats.rows_in
        return Outcome()
