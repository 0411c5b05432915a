"""Quality figures of a gate, derived from its evaluations by column type:

- bool columns give a rate (``exec_pass`` -> ``exec_pass_rate``),
- ``*reason`` / ``*error`` / ``*_class`` string columns give a histogram,
- double columns give mean, p50 and p10 (``score`` -> ``score_mean`` ...).

Computed while the gate writes its rows, stored in the run record's quality report.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any


class QualityAccumulator:
    def __init__(self, outputs: Mapping[str, str]) -> None:
        self.outputs = dict(outputs)
        self.count = 0
        self.kept = 0
        self.trues: Counter[str] = Counter()
        self.hist: dict[str, Counter[str]] = {}
        self.values: dict[str, list[float]] = {}

    def add(self, evaluation: Mapping[str, Any], passed: bool) -> None:
        self.count += 1
        self.kept += bool(passed)
        for name, kind in self.outputs.items():
            value = evaluation.get(name)
            if kind == "bool":
                self.trues[name] += value is True
            elif kind == "double" and isinstance(value, (int, float)):
                self.values.setdefault(name, []).append(float(value))
            elif kind == "string" and name.endswith(("reason", "error", "_class")):
                self.hist.setdefault(name, Counter())[_bucket(value)] += 1

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        n = self.count
        for name, kind in self.outputs.items():
            if kind == "bool":
                out[f"{name}_rate"] = round(self.trues[name] / n, 4) if n else None
        for name, counter in self.hist.items():
            out[f"{name}_counts"] = dict(sorted(counter.items()))
        for name, values in self.values.items():
            ordered = sorted(values)
            out[f"{name}_mean"] = round(statistics.fmean(ordered), 4)
            out[f"{name}_p50"] = round(statistics.median(ordered), 4)
            out[f"{name}_p10"] = round(ordered[int(0.1 * (len(ordered) - 1))], 4)
        return out


_CODE = re.compile(r"^[a-z0-9_:.-]{1,40}$")


def _bucket(value: Any) -> str:
    """Codes (``syntax_error``, ``too_long``) count as themselves; free-text messages (a
    parser's error text) count as ``other`` so the histogram stays readable."""
    if value is None:
        return "none"
    text = str(value)
    return text if _CODE.match(text) else "other"
