"""``sample:`` and ``where:`` of a source: which of its rows go downstream at all.

Both happen in the source node, so a row left out is never rendered, never sent to a
teacher and never counted downstream.

A row's place in a sample depends only on its id and the seed: its score is
``xxh3_64("<seed>:<id>") / 2**64``, a number in [0, 1).

* ``{fraction: f, seed: s}`` keeps the rows scoring below ``f``. Membership is decided
  row by row, so rows appended to the file never change which of the old rows are in,
  and a rebuild asks the teacher only for the new rows that fall in the sample.
* ``{n: k, seed: s}`` keeps the ``k`` rows with the lowest scores (ties by id): exactly
  ``k`` (all rows if fewer), the same ones on every build of the same file. Appending
  rows may swap some out (a new row can score lower), which ``fraction`` never does.

``where:`` keeps the rows whose columns match rules in the syntax of a gate's ``keep:``
(``fdbuild/checks/keep.py``): ``{lang: en}`` (equality), ``{score: {min: 0.5}}``,
``{level: {in: [easy, medium]}}``, ``{tag: {not: spam}}``; all rules must hold and a null
or missing value never matches. It applies before ``sample``: a sample of ``n`` is ``n``
rows that match.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

import xxhash

from fdbuild.checks.keep import Predicate, compile_keep

_SCALE = float(2**64)


def score(seed: int, row_id: str) -> float:
    """The row's draw in [0, 1): the same for the same (seed, id) on every machine."""
    return xxhash.xxh3_64_intdigest(f"{seed}:{row_id}".encode()) / _SCALE


def in_fraction(seed: int, fraction: float, row_id: str) -> bool:
    return fraction >= 1 or score(seed, row_id) < fraction


def smallest_n(seed: int, n: int, row_ids: Iterable[str]) -> set[str]:
    """The ids of the ``n`` lowest scores (ties broken by the id), in bounded memory."""
    return {rid for _, rid in heapq.nsmallest(n, ((score(seed, rid), rid) for rid in row_ids))}


def compile_where(rules: Mapping[str, Any]) -> Predicate:
    """Raises ValueError naming the column of a malformed rule."""
    try:
        return compile_keep(rules)
    except ValueError as exc:
        raise ValueError(str(exc).replace("keep rule", "where rule")) from None
