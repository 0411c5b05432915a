"""Row-level diff of one node between two runs, read from its Parquet artifacts.

Rows are matched by ``_id``. Each row lands in exactly one bucket:

* **flipped**: a gate upstream (or the node itself, if it is a gate) holds the row in
  both runs and its verdict ``_pass_<gate>`` differs: kept->dropped or dropped->kept.
  A flip wins over every other bucket: the row a stricter ``keep`` drops from a select
  is a flip, not a removal.
* **added** / **removed**: the row is only in B / only in A (and did not flip).
* **changed**: in both, and a compared field differs (``completion`` by default).
* **unchanged**: the rest.

Each artifact is read once, reduced to ids, hashes and verdicts (``diffscan``); ids are
matched with Arrow's hash kernels (``index_in``/``is_in``), so no Python loop touches
every row except the hashing itself.

An artifact that ``fdbuild gc`` removed is reported as a note; the rest of the diff
still works from the run records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fdbuild import columns as C
from fdbuild.diff.scan import (
    Compact,
    Flips,
    Gate,
    RowExample,
    build_examples,
    concat,
    pick_examples,
    read_compact,
)
from fdbuild.errors import PlanError
from fdbuild.records import node_order, producer
from fdbuild.store.objects import ArtifactStore

__all__ = ["NodeRows", "RowExample", "choose_fields", "diff_node_rows", "node_artifact"]

Record = Mapping[str, Any]


@dataclass(frozen=True)
class NodeRows:
    """Row counts per bucket for one node, and a few examples. Counts are ``None`` when
    an artifact is missing; ``notes`` says why."""

    node: str
    via: str | None
    fields: tuple[str, ...]
    rows_a: int | None
    rows_b: int | None
    added: int | None = None
    removed: int | None = None
    changed: int | None = None
    kept_to_dropped: int | None = None
    dropped_to_kept: int | None = None
    unchanged: int | None = None
    examples: tuple[RowExample, ...] = ()
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- which artifact


def node_artifact(record: Record, node: str) -> tuple[str | None, str | None]:
    """(digest of the rows to diff, the export named) for a node of a run. An export's
    output is a file, so its *input* rows are diffed."""
    entry = record.get("nodes", {}).get(node)
    if entry is None:
        return None, None
    if entry.get("kind") == "export":
        return (entry.get("input_digests") or [None])[0], node
    return entry.get("output", {}).get("digest"), None


def choose_fields(
    schema_a: pa.Schema, schema_b: pa.Schema, wanted: Sequence[str]
) -> tuple[str, ...]:
    """``wanted``, else ``completion``, else every user column both runs have."""
    names_a, names_b = schema_a.names, schema_b.names
    if wanted:
        missing = [f for f in wanted if f not in names_a and f not in names_b]
        if missing:
            shown = ", ".join(n for n in names_b if not C.is_internal(n))
            raise PlanError(f"--field {', '.join(missing)}: no such column (columns: {shown})")
        return tuple(wanted)
    if C.COMPLETION in names_a and C.COMPLETION in names_b:
        return (C.COMPLETION,)
    return tuple(n for n in names_b if n in names_a and not C.is_internal(n))


def _missing_note(record: Record, node: str, digest: str | None) -> str:
    """Why a run has no rows to diff for ``node``."""
    if not digest:
        return f"no rows for '{node}' in run {record['run_id']} (no such node in that run)"
    if record.get("from_lock"):
        return (
            f"no rows for '{node}' in run {record['run_id']}: it is known from fdbuild.lock "
            "only, and its artifacts (under .fdbuild/, not committed) are not in this checkout"
        )
    return (
        f"no rows for '{node}' in run {record['run_id']} (artifact missing; "
        "`fdbuild gc` removes old artifacts)"
    )


def _keep_columns(*nodes: Mapping[str, Any]) -> list[str]:
    """The evaluation columns the gate's keep rule reads, in A or in B."""
    out: list[str] = []
    for node in nodes:
        recipe = node.get("recipe") or {}
        prefix = recipe.get("prefix") or ""
        out += [prefix + k for k in recipe.get("keep") or {} if prefix + k not in out]
    return out


def _gate_name(record: Record, short: str) -> str | None:
    for name, node in record.get("nodes", {}).items():
        if node.get("kind") == "gate" and name.split("#")[-1] == short:
            return name
    return None


def _eval_columns(
    store: ArtifactStore, record: Record, gate: str, gate_schema: pa.Schema
) -> list[str]:
    """The columns the gate added: its schema minus its input's."""
    inputs = record["nodes"][gate].get("input_digests") or []
    if not inputs or not store.exists(inputs[0]):
        return []
    before = set(store.schema(inputs[0]).names)
    return [n for n in gate_schema.names if n not in before and not C.is_internal(n)]


# --------------------------------------------------------------------------- the diff


class _Reader:
    """Compact reads, once per (artifact, hashed or not), within one node diff."""

    def __init__(
        self, store: ArtifactStore, fields: Sequence[str], pass_cols: Sequence[str]
    ) -> None:
        self.store, self.fields, self.pass_cols = store, fields, pass_cols
        self._cache: dict[str, Compact] = {}

    def compact(self, digest: str, *, hashed: bool) -> Compact:
        have = self._cache.get(digest)
        if have is not None and (have.hashes is not None or not hashed):
            return have
        got = read_compact(self.store.path(digest), self.fields if hashed else (), self.pass_cols)
        self._cache[digest] = got
        return got


def diff_node_rows(
    store: ArtifactStore,
    a: Record,
    b: Record,
    node: str,
    *,
    fields: Sequence[str] = (),
    examples: int = 5,
) -> NodeRows:
    """Diff the rows of ``node`` (matched by name) between runs A and B."""
    digest_a, via_a = node_artifact(a, node)
    digest_b, via_b = node_artifact(b, node)
    label = _label(a, b, node, digest_b or digest_a)
    via = via_b or via_a
    for digest in dict.fromkeys(d for d in (digest_a, digest_b) if d and store.exists(d)):
        store.require(digest)  # a damaged artifact is a clear error, never wrong rows
    rows_a = _row_count(store, digest_a)
    rows_b = _row_count(store, digest_b)
    notes = [
        _missing_note(r, node, d)
        for r, d in ((a, digest_a), (b, digest_b))
        if not d or not store.exists(d)
    ]
    if notes:
        return NodeRows(label, via, tuple(fields), rows_a, rows_b, notes=tuple(notes))
    assert digest_a and digest_b
    schema_a, schema_b = store.schema(digest_a), store.schema(digest_b)
    chosen = choose_fields(schema_a, schema_b, fields)
    if digest_a == digest_b:
        return NodeRows(
            label,
            via,
            chosen,
            rows_a,
            rows_b,
            0,
            0,
            0,
            0,
            0,
            rows_b,
            notes=("same rows in both runs (same output digest)",),
        )
    pass_cols = list(dict.fromkeys(C.pass_columns(schema_b.names) + C.pass_columns(schema_a.names)))
    reader = _Reader(store, chosen, pass_cols)
    na = reader.compact(digest_a, hashed=True)
    nb = reader.compact(digest_b, hashed=True)
    gates = _gates(store, reader, a, b, pass_cols)
    flips = _find_flips(gates, pa.concat_arrays([na.ids, nb.ids]))
    in_flip_a = _np(pc.is_in(na.ids, value_set=flips.ids))
    in_flip_b = _np(pc.is_in(nb.ids, value_set=flips.ids))
    idx = _np(pc.fill_null(pc.index_in(na.ids, value_set=nb.ids), -1)).astype(np.int64)
    common = idx >= 0
    assert na.hashes is not None and nb.hashes is not None
    hashes_b = (
        nb.hashes[np.where(common, idx, 0)] if len(nb.hashes) else np.zeros(len(idx), np.uint64)
    )
    changed = common & (na.hashes != hashes_b) & ~in_flip_a
    removed = ~common & ~in_flip_a
    added = ~_np(pc.is_in(nb.ids, value_set=na.ids)) & ~in_flip_b
    kept_to_dropped = int(flips.kept_before.sum())
    picks = pick_examples(
        examples,
        flips,
        np.flatnonzero(changed),
        idx,
        np.flatnonzero(added),
        np.flatnonzero(removed),
    )
    shown = build_examples(picks, chosen, na, nb, flips)
    return NodeRows(
        label,
        via,
        chosen,
        rows_a,
        rows_b,
        added=int(added.sum()),
        removed=int(removed.sum()),
        changed=int(changed.sum()),
        kept_to_dropped=kept_to_dropped,
        dropped_to_kept=len(flips.ids) - kept_to_dropped,
        unchanged=int((common & ~changed & ~in_flip_a).sum()),
        examples=tuple(shown),
    )


def _np(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _label(a: Record, b: Record, node: str, digest: str | None) -> str:
    for record in (b, a):
        entry = record.get("nodes", {}).get(node)
        if entry is not None and entry.get("kind") == "export":
            return producer(record, digest, before=node) or node
    return node


def _row_count(store: ArtifactStore, digest: str | None) -> int | None:
    if not digest or not store.exists(digest):
        return None
    return store.row_count(digest)


def _gates(
    store: ArtifactStore, reader: _Reader, a: Record, b: Record, pass_cols: Sequence[str]
) -> list[Gate]:
    """The gates whose verdicts the node's rows carry, present in both runs, in order."""
    order = {name: i for i, name in enumerate(node_order(b))}
    out = []
    for col in pass_cols:
        short = col[len("_pass_") :]
        name_a, name_b = _gate_name(a, short), _gate_name(b, short)
        if not name_a or not name_b:
            continue
        digest_a = a["nodes"][name_a]["output"].get("digest")
        digest_b = b["nodes"][name_b]["output"].get("digest")
        if not (digest_a and digest_b and store.exists(digest_a) and store.exists(digest_b)):
            continue
        schema = store.schema(digest_b)
        out.append(
            Gate(
                name_b,
                col,
                reader.compact(digest_a, hashed=False),
                reader.compact(digest_b, hashed=False),
                _eval_columns(store, b, name_b, schema),
                _keep_columns(a["nodes"][name_a], b["nodes"][name_b]),
            )
        )
    return sorted(out, key=lambda g: order.get(g.name, len(order)))


def _find_flips(gates: list[Gate], relevant: pa.Array) -> Flips:
    """Rows whose verdict differs at some gate (the first such gate wins)."""
    found_ids: list[pa.Array] = []
    kept: list[np.ndarray] = []
    pos_a: list[np.ndarray] = []
    pos_b: list[np.ndarray] = []
    owner: list[Gate] = []
    for gate in gates:
        if gate.col not in gate.a.passes or gate.col not in gate.b.passes:
            continue
        idx = pc.index_in(gate.a.ids, value_set=gate.b.ids)
        verdict_a = gate.a.passes[gate.col]
        verdict_b = gate.b.passes[gate.col].take(idx)
        differ = pc.fill_null(pc.not_equal(verdict_a, verdict_b), False)
        differ = pc.and_(differ, pc.is_in(gate.a.ids, value_set=relevant))
        if found_ids:
            differ = pc.and_(
                differ, pc.invert(pc.is_in(gate.a.ids, value_set=pa.concat_arrays(found_ids)))
            )
        where = np.flatnonzero(_np(differ))
        if not len(where):
            continue
        found_ids.append(gate.a.ids.take(pa.array(where)))
        kept.append(_np(verdict_a.take(pa.array(where))).astype(bool))
        pos_a.append(where)
        pos_b.append(_np(idx.take(pa.array(where))).astype(np.int64))
        owner += [gate] * len(where)
    return Flips(
        owner,
        concat(found_ids, pa.string()),
        np.concatenate(kept) if kept else np.zeros(0, bool),
        np.concatenate(pos_a) if pos_a else np.zeros(0, np.int64),
        np.concatenate(pos_b) if pos_b else np.zeros(0, np.int64),
    )
