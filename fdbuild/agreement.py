"""Agreement statistics between two sides of a comparison (teacher and student, two runs).

Pure functions on plain lists, no third-party dependency, so a ``compare`` node's
figures can be checked against a table computed by hand. Every figure comes with the
number of pairs it rests on, and is ``None`` where it is undefined rather than a made-up
0 or 1: no pairs at all, a correlation of a side with zero variance, a kappa whose
chance agreement is already 1 (both sides constant and equal).

* verdicts (a gate's pass/fail): each side's pass rate, raw agreement, Cohen's kappa;
* scores (a judge's number): MAE, RMSE, Pearson's r, Spearman's rho (Pearson on average
  ranks, so ties get the mean of the ranks they span, as scipy's ``spearmanr`` does).

Pairs where either value is missing (``None``) are left out of that figure's n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

ROUND = 6
"""Figures are rounded to 6 decimals: stable in JSON across platforms, exact enough."""


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, ROUND)


def _pairs(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Any, Any]]:
    if len(a) != len(b):
        raise ValueError(f"the two sides have {len(a)} and {len(b)} values; pairs need equal")
    return [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def verdict_agreement(a: Sequence[bool | None], b: Sequence[bool | None]) -> dict[str, Any]:
    """Pass rates, agreement and Cohen's kappa of two verdict columns, joined row by row.

    ``both_pass``/``a_only``/``b_only``/``both_fail`` are the 2x2 table; ``flips`` are
    the rows the sides disagree on (``a_only + b_only``)."""
    pairs = [(bool(x), bool(y)) for x, y in _pairs(a, b)]
    n = len(pairs)
    both = sum(1 for x, y in pairs if x and y)
    a_only = sum(1 for x, y in pairs if x and not y)
    b_only = sum(1 for x, y in pairs if y and not x)
    neither = n - both - a_only - b_only
    out: dict[str, Any] = {
        "n": n,
        "both_pass": both,
        "a_only": a_only,
        "b_only": b_only,
        "both_fail": neither,
        "flips": a_only + b_only,
        "pass_rate_a": None,
        "pass_rate_b": None,
        "agreement": None,
        "kappa": None,
    }
    if not n:
        return out
    pa = (both + a_only) / n
    pb = (both + b_only) / n
    po = (both + neither) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    out["pass_rate_a"] = _r(pa)
    out["pass_rate_b"] = _r(pb)
    out["agreement"] = _r(po)
    out["kappa"] = _r((po - pe) / (1 - pe)) if pe < 1 else None
    return out


def pass_rate(values: Sequence[bool | None]) -> tuple[float | None, int]:
    """The share of True among the values present, and how many were present."""
    present = [bool(v) for v in values if v is not None]
    return (_r(sum(present) / len(present)) if present else None), len(present)


def mae(a: Sequence[float], b: Sequence[float]) -> float | None:
    if not a:
        return None
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def rmse(a: Sequence[float], b: Sequence[float]) -> float | None:
    if not a:
        return None
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) / len(a))


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson's r; None with fewer than 2 pairs or when a side does not vary."""
    n = len(a)
    if n < 2:
        return None
    ma = sum(a) / n
    mb = sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    if saa == 0 or sbb == 0:
        return None
    r = sab / math.sqrt(saa * sbb)
    return max(-1.0, min(1.0, r))


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = mean
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks."""
    if len(a) < 2:
        return None
    return pearson(average_ranks(a), average_ranks(b))


def score_agreement(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, Any]:
    """MAE, RMSE, Pearson and Spearman of two score columns, joined row by row, and each
    side's mean (all on the pairs where both sides have a score)."""
    pairs = [(float(x), float(y)) for x, y in _pairs(a, b)]
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    n = len(pairs)
    return {
        "n": n,
        "mean_a": _r(sum(xs) / n) if n else None,
        "mean_b": _r(sum(ys) / n) if n else None,
        "mae": _r(mae(xs, ys)),
        "rmse": _r(rmse(xs, ys)),
        "pearson": _r(pearson(xs, ys)),
        "spearman": _r(spearman(xs, ys)),
    }
