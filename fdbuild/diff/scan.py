"""Reading artifacts for a row diff, and the examples it shows.

Why it is fast and small (issue 4: two 100k-row runs diffed in under 3x the time of
reading both artifacts once):

1. ``read_compact`` streams an artifact once, reading only ``_id``, the compared fields
   and the ``_pass_*`` verdicts, batch by batch, and keeps per row only its id, a 64-bit
   xxh3 of the compared fields and the verdicts. Texts are never held: memory is about
   ``rows x (id + 8 bytes)``, whatever the size of the completions.
2. ``fetch_rows`` reads the ``--rows N`` examples back by position, one Parquet row group
   at a time (8192 rows each), so five examples never re-read a whole artifact.

A 64-bit hash can collide; for two different texts of one row the chance is about
2^-64, far below that of any other failure of the build.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from fdbuild import columns as C
from fdbuild.errors import PlanError
from fdbuild.keys import canonical_json

_BATCH_ROWS = 65536
_NULL_HASH = 0x9E3779B97F4A7C15
_TEXT_CAP = 2000
FLIP_DROPPED = "kept->dropped"
FLIP_KEPT = "dropped->kept"


@dataclass(frozen=True)
class RowExample:
    """One row shown side by side: what changed in it, before (A) and after (B)."""

    row_id: str
    change: str  # changed | added | removed | kept->dropped | dropped->kept
    field: str | None
    before: Any
    after: Any
    gate: str | None = None
    detail: str | None = None


@dataclass
class Compact:
    """One artifact reduced to what matching needs; row i is the file's row i."""

    path: Path
    ids: pa.Array
    hashes: np.ndarray | None
    passes: dict[str, pa.Array]


@dataclass
class Gate:
    """A gate's verdicts in both runs, the columns it added and those its keep reads."""

    name: str
    col: str
    a: Compact
    b: Compact
    eval_cols: list[str]
    keep_cols: list[str]


@dataclass
class Flips:
    gate: list[Gate]
    ids: pa.Array
    kept_before: np.ndarray
    pos_a: np.ndarray
    pos_b: np.ndarray


# --------------------------------------------------------------------------- reading


def _value_hash(value: Any) -> int:
    if value is None:
        return _NULL_HASH
    if isinstance(value, str):
        return xxhash.xxh3_64_intdigest(value.encode("utf-8", "surrogatepass"))
    return xxhash.xxh3_64_intdigest(b"\x00" + canonical_json(value).encode())


def _hash_batch(batch: pa.RecordBatch, fields: Sequence[str]) -> np.ndarray:
    """A 64-bit digest of the compared fields of every row of one batch."""
    columns = [
        batch.column(f).to_pylist() if f in batch.schema.names else [None] * batch.num_rows
        for f in fields
    ]
    if len(columns) == 1:
        values: Iterator[int] = (_value_hash(v) for v in columns[0])
    else:
        values = (_value_hash(list(t)) for t in zip(*columns, strict=True))
    return np.fromiter(values, dtype=np.uint64, count=batch.num_rows)


def read_compact(
    path: Path, fields: Sequence[str], pass_cols: Sequence[str], batch_rows: int = _BATCH_ROWS
) -> Compact:
    """Stream an artifact once, keeping ids, field hashes (if ``fields``) and verdicts."""
    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    if C.ID not in names:
        raise PlanError(f"artifact {path} has no {C.ID} column; rows cannot be matched")
    wanted_pass = [c for c in dict.fromkeys(pass_cols) if c in names]
    read = list(dict.fromkeys([C.ID, *[f for f in fields if f in names], *wanted_pass]))
    ids: list[pa.Array] = []
    hashes: list[np.ndarray] = []
    passes: dict[str, list[pa.Array]] = {c: [] for c in wanted_pass}
    for batch in pf.iter_batches(batch_size=batch_rows, columns=read):
        ids.append(batch.column(C.ID))
        if fields:
            hashes.append(_hash_batch(batch, fields))
        for col in wanted_pass:
            passes[col].append(batch.column(col))
    return Compact(
        path=path,
        ids=concat(ids, pa.string()),
        hashes=(np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)) if fields else None,
        passes={c: concat(v, pa.bool_()) for c, v in passes.items()},
    )


def concat(chunks: list[pa.Array], kind: pa.DataType) -> pa.Array:
    return pa.concat_arrays(chunks) if chunks else pa.array([], kind)


def fetch_rows(
    path: Path, positions: Sequence[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """The rows at ``positions``, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    cols = [c for c in dict.fromkeys(columns) if c in names]
    starts = [0]
    for i in range(pf.metadata.num_row_groups):
        starts.append(starts[-1] + pf.metadata.row_group(i).num_rows)
    by_group: dict[int, list[int]] = {}
    for pos in sorted(set(positions)):
        by_group.setdefault(bisect.bisect_right(starts, pos) - 1, []).append(pos)
    out: dict[int, dict[str, Any]] = {}
    for group, wanted in by_group.items():
        table = pf.read_row_group(group, columns=cols)
        rows = table.take(pa.array([p - starts[group] for p in wanted])).to_pylist()
        out.update(zip(wanted, rows, strict=True))
    return out


# --------------------------------------------------------------------------- examples


def pick_examples(
    limit: int,
    flips: Flips,
    changed: np.ndarray,
    idx: np.ndarray,
    added: np.ndarray,
    removed: np.ndarray,
) -> list[tuple[str, Any]]:
    """Up to ``limit`` examples, round robin over the buckets so each one shows, each
    bucket in artifact order (the source's order, so runs show the same rows)."""
    dropped = np.flatnonzero(flips.kept_before)[:limit]
    kept = np.flatnonzero(~flips.kept_before)[:limit]
    buckets: list[list[tuple[str, Any]]] = [
        [("flip", int(i)) for i in dropped],
        [("flip", int(i)) for i in kept],
        [("changed", (int(p), int(idx[p]))) for p in changed[:limit]],
        [("added", int(p)) for p in added[:limit]],
        [("removed", int(p)) for p in removed[:limit]],
    ]
    picks: list[tuple[str, Any]] = []
    while len(picks) < limit and any(buckets):
        for bucket in buckets:
            if bucket and len(picks) < limit:
                picks.append(bucket.pop(0))
    return picks


def build_examples(
    picks: list[tuple[str, Any]], fields: Sequence[str], na: Compact, nb: Compact, flips: Flips
) -> list[RowExample]:
    wanted: dict[Path, set[int]] = {}
    extra: dict[Path, list[str]] = {}

    def want(compact: Compact, pos: int, cols: Sequence[str] = ()) -> None:
        wanted.setdefault(compact.path, set()).add(pos)
        extra.setdefault(compact.path, [])
        extra[compact.path] += [c for c in cols if c not in extra[compact.path]]

    for kind, ref in picks:
        if kind == "flip":
            gate = flips.gate[ref]
            want(gate.a, int(flips.pos_a[ref]), [*gate.eval_cols, gate.col])
            want(gate.b, int(flips.pos_b[ref]), [*gate.eval_cols, gate.col])
        elif kind == "changed":
            want(na, ref[0])
            want(nb, ref[1])
        else:
            want(nb if kind == "added" else na, ref)
    rows = {
        path: fetch_rows(path, sorted(pos), [C.ID, *fields, *extra[path]])
        for path, pos in wanted.items()
    }
    out = []
    for kind, ref in picks:
        if kind == "flip":
            gate = flips.gate[ref]
            before = rows[gate.a.path][int(flips.pos_a[ref])]
            after = rows[gate.b.path][int(flips.pos_b[ref])]
            out.append(_flip_example(before, after, fields, gate, bool(flips.kept_before[ref])))
        elif kind == "changed":
            before, after = rows[na.path][ref[0]], rows[nb.path][ref[1]]
            name = next(
                (f for f in fields if before.get(f) != after.get(f)), fields[0] if fields else None
            )
            out.append(
                RowExample(
                    str(before[C.ID]),
                    "changed",
                    name,
                    _cap(before.get(name)) if name is not None else None,
                    _cap(after.get(name)) if name is not None else None,
                )
            )
        else:
            row = rows[(nb if kind == "added" else na).path][ref]
            name = fields[0] if fields else None
            value = _cap(row.get(name)) if name else None
            out.append(
                RowExample(
                    str(row[C.ID]),
                    kind,
                    name,
                    None if kind == "added" else value,
                    value if kind == "added" else None,
                )
            )
    return out


def _flip_example(
    before: dict[str, Any],
    after: dict[str, Any],
    fields: Sequence[str],
    gate: Gate,
    kept_before: bool,
) -> RowExample:
    change = FLIP_DROPPED if kept_before else FLIP_KEPT
    name = next((f for f in fields if before.get(f) != after.get(f)), None)
    if name is None:
        verdicts = ("kept", "dropped") if kept_before else ("dropped", "kept")
        shown: tuple[Any, Any] = verdicts
    else:
        shown = (_cap(before.get(name)), _cap(after.get(name)))
    return RowExample(
        str(before[C.ID]),
        change,
        name or "verdict",
        shown[0],
        shown[1],
        gate.name,
        flip_detail(before, after, gate),
    )


def flip_detail(before: dict[str, Any], after: dict[str, Any], gate: Gate, limit: int = 3) -> str:
    """Why the verdict flipped, in the gate's own columns: the ones its ``keep`` rule
    reads first. Same evaluation on both sides means the keep rule itself changed."""
    cols = [c for c in gate.keep_cols if c in gate.eval_cols]
    cols += [c for c in gate.eval_cols if c not in cols]
    differ = [c for c in cols if before.get(c) != after.get(c)]
    if differ:
        return "; ".join(
            f"{c}: {_short(before.get(c))} -> {_short(after.get(c))}" for c in differ[:limit]
        )
    same = ", ".join(f"{c}={_short(after.get(c))}" for c in cols[:limit])
    return f"{same} (same evaluation; the keep rule decides)" if same else "the keep rule decides"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _cap(value: Any) -> Any:
    """JSON-able and at most ``_TEXT_CAP`` characters."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= _TEXT_CAP else text[:_TEXT_CAP] + "..."
