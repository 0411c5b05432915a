"""Comparing and fingerprinting SQL query results.

FastDistill compared results by sorting rows on their ``str()`` form (so ``[10]``,
``[100]``, ``[9]``), ignored ``ORDER BY``, had no float tolerance and hashed a non-canonical
fallback. Here, a result is a sequence of rows of SQLite values (None, int, float, str,
bytes) and:

* values are equal when both are numbers within ``tol`` (``math.isclose`` with
  ``rel_tol = abs_tol = tol``, so ``1 == 1.0`` and ``0.1 + 0.2 == 0.3``), or when they are
  the same non-numeric value (``'1'`` is not ``1``; NULL equals NULL);
* rows are equal when they have the same width and equal values position by position
  (column order as written; column names are never compared);
* results match as **sequences** when ``ordered`` (the gold query has a top-level
  ORDER BY), else as **multisets**: duplicates count, order does not. With a tolerance the
  multiset test is a bipartite matching, exact for groups up to ``_MATCHING_LIMIT`` rows.

``result_signature`` is a stable hash of a result for execution-agreement voting: floats
are rounded to the significant digits ``tol`` implies, whole floats become ints, and the
rows are sorted unless the query itself fixes their order.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from fdbuild.keys import canonical_json, digest_text

Row = Sequence[Any]
_MATCHING_LIMIT = 400


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def canonical_value(value: Any) -> Any:
    """A whole float becomes an int (so ``1.0`` and ``1`` are one value); else unchanged."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def values_close(a: Any, b: Any, tol: float) -> bool:
    if _is_number(a) and _is_number(b):
        return a == b or math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    return type(a) is type(b) and a == b


def rows_close(a: Row, b: Row, tol: float) -> bool:
    return len(a) == len(b) and all(values_close(x, y, tol) for x, y in zip(a, b, strict=True))


def results_match(
    candidate: Sequence[Row], gold: Sequence[Row], *, ordered: bool, tol: float
) -> bool:
    """Whether two results are the same answer (see the module docstring)."""
    if len(candidate) != len(gold):
        return False
    if ordered:
        return all(rows_close(a, b, tol) for a, b in zip(candidate, gold, strict=True))
    exact_a = Counter(tuple(map(_exact_key, row)) for row in candidate)
    exact_b = Counter(tuple(map(_exact_key, row)) for row in gold)
    if exact_a == exact_b:
        return True
    return tol > 0 and _tolerant_multiset_match(candidate, gold, tol)


def _exact_key(value: Any) -> tuple[str, Any]:
    """A hashable key equal only for values that are equal exactly (1 and 1.0 included)."""
    value = canonical_value(value)
    return ("n" if _is_number(value) else type(value).__name__, value)


def _tolerant_multiset_match(a: Sequence[Row], b: Sequence[Row], tol: float) -> bool:
    """Multiset equality up to ``tol``: rows are grouped by their non-numeric values
    (which must match exactly), then each group's numeric parts are matched."""
    groups_a, groups_b = _numeric_groups(a), _numeric_groups(b)
    if groups_a.keys() != groups_b.keys():
        return False
    return all(_match_vectors(groups_a[k], groups_b[k], tol) for k in groups_a)


def _numeric_groups(rows: Sequence[Row]) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        shape = tuple("#" if _is_number(v) else _exact_key(v) for v in row)
        key = (len(row), *shape)  # not inline: mypy misreads groups[(a, *b)] as 3.11-only syntax
        groups[key].append(tuple(v for v in row if _is_number(v)))
    return groups


def _match_vectors(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], tol: float) -> bool:
    """Whether the numeric vectors can be paired off within ``tol``.

    Sorting both sides and pairing in order decides the common cases (one numeric column
    is always decided exactly this way); otherwise a bipartite matching decides.
    """
    if len(a) != len(b):
        return False
    sa, sb = sorted(a), sorted(b)
    if all(rows_close(x, y, tol) for x, y in zip(sa, sb, strict=True)):
        return True
    if len(a[0]) <= 1 or len(a) > _MATCHING_LIMIT:
        return False
    return _perfect_matching(sa, sb, tol)


def _perfect_matching(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]], tol: float) -> bool:
    """Kuhn's augmenting-path algorithm: can every row of ``a`` get a distinct close row of ``b``?"""
    edges = [[j for j, y in enumerate(b) if rows_close(x, y, tol)] for x in a]
    owner: list[int] = [-1] * len(b)

    def assign(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j not in seen:
                seen.add(j)
                if owner[j] == -1 or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(assign(i, set()) for i in range(len(a)))


def result_signature(rows: Sequence[Row], *, columns: int, ordered: bool, tol: float) -> str:
    """A stable hash of a normalised result; equal results (up to rounding) hash equal."""
    digits = 17 if tol <= 0 else max(1, min(17, round(-math.log10(tol))))
    normal = [[_signature_value(v, digits) for v in row] for row in rows]
    if not ordered:
        normal.sort(key=lambda row: [_sort_key(v) for v in row])
    payload = {"sig": 1, "columns": columns, "ordered": ordered, "rows": normal}
    return digest_text(canonical_json(payload))


def _signature_value(value: Any, digits: int) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"__float__": str(value)}
        value = float(f"{value:.{digits}g}")
    value = canonical_value(value)
    return {"__bytes__": value.hex()} if isinstance(value, bytes) else value


def _sort_key(value: Any) -> tuple[int, Any]:
    """SQLite's own cross-type order: NULL < numbers < text < blobs (and inf markers)."""
    if value is None:
        return (0, 0)
    if _is_number(value):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, canonical_json(value))
