"""The ``math_answer`` gate: is the reply's final answer the gold answer?

Executable verification for math distillation: the answer is extracted from the reply
(``math_parse.extract_answer``: ``####``, ``\\boxed{}``, "the answer is", ``Answer:``, the
last number) and compared with the gold column as exact numbers, so ``1,234``, ``1234.0``
and ``\\frac{2468}{2}`` are one answer. Rules, chosen to be explicit rather than clever:

* The gold is read as a number; a gold that is not one (a GSM8K solution text) is read
  with the same extraction rules (its ``#### 72`` line). Neither: ``unparsable_gold``.
* ``%`` is a unit: ``50%`` equals ``50`` (GSM8K writes percentages as plain numbers),
  not ``0.5``. ``percent: either`` also accepts the value / 100 when exactly one side
  carries the sign (``50%`` == ``0.5``).
* Equal when exactly equal, or ``|answer - gold| <= max(tolerance, rel_tolerance * |gold|)``
  (defaults 1e-6 absolute, 0 relative).
* ``symbolic: true`` compares answers that are not numbers (``\\frac{\\sqrt{3}}{2}``,
  ``2x+1``) with sympy, imported lazily. It needs the ``math`` extra; asking for it
  without sympy installed is a load-time error, never a silent numeric-only fallback
  (which would keep different rows on different machines under one cache key). Only
  arithmetic over numbers, single-letter variables and a few named functions is handed
  to sympy (its parser evaluates Python), with small exponents, at most 200 characters.

Outputs: ``correct`` (bool), ``answer`` (the extracted text), ``gold`` (the gold's
answer text), ``reason`` (``ok``, ``wrong``, ``no_answer``, ``unparsable_gold``),
``extracted_by`` (the extraction rule). ``answer`` and ``gold`` usually clash with the
columns the check reads (``parse: rationale``'s ``answer``): give the gate a
``prefix:`` (e.g. ``math_``), as the gate machinery requires for any clash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from fdbuild.checks.math_parse import Number, extract_answer, normalize, parse_number, read_answer
from fdbuild.errors import ParamError

OK, WRONG, NO_ANSWER, UNPARSABLE_GOLD = "ok", "wrong", "no_answer", "unparsable_gold"


class MathAnswerParams(CheckParams):
    answer: str = Field("answer", description="Column holding the reply or its answer part.")
    gold: str = Field("gold", description="Column holding the gold answer.")
    tolerance: float = Field(1e-6, ge=0, description="Absolute tolerance.")
    rel_tolerance: float = Field(0.0, ge=0, description="Relative tolerance (of |gold|).")
    percent: Literal["strip", "either"] = Field(
        "strip", description="strip: 50% == 50; either: 50% == 50 and 50% == 0.5."
    )
    symbolic: bool = Field(False, description="Compare non-numeric answers with sympy.")


class MathAnswerCheck(Check[MathAnswerParams]):
    """Annotates correct, answer, gold, reason, extracted_by."""

    name = "math_answer"
    version = "1"
    Params = MathAnswerParams
    outputs = {
        "correct": "bool",
        "answer": "string",
        "gold": "string",
        "reason": "string",
        "extracted_by": "string",
    }

    def __init__(self, params: MathAnswerParams, base_dir: Path) -> None:
        super().__init__(params, base_dir)
        self._sympy: Any = None
        self.cpu_bound = params.symbolic  # sympy's simplify costs CPU; numbers do not
        if params.symbolic:
            try:
                from fdbuild.checks import math_symbolic
            except ImportError:
                raise ParamError(
                    "symbolic",
                    "symbolic: true needs sympy, which is not installed "
                    "(pip install 'fdbuild[math]')",
                ) from None
            self._sympy = math_symbolic

    def reads(self) -> Sequence[str]:
        return [self.params.answer, self.params.gold]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self.compare(_text(row.get(self.params.answer)), _text(row.get(self.params.gold)))

    def compare(self, reply: str, gold_text: str) -> dict[str, Any]:
        """The verdict for one reply against one gold answer."""
        gold_span, gold = self._gold(gold_text.strip())
        found = extract_answer(reply)
        out: dict[str, Any] = {
            "correct": False,
            "answer": None if found is None else found[0],
            "gold": gold_span or None,
            "reason": WRONG,
            "extracted_by": None if found is None else found[1],
        }
        if gold is None and not (self._sympy and gold_span and self._sympy.parses(gold_span)):
            out["reason"] = UNPARSABLE_GOLD
            return out
        if found is None:
            out["reason"] = NO_ANSWER
            return out
        answer = read_answer(*found)
        if answer is not None and gold is not None:
            equal = self._numbers_equal(answer, gold)
        elif self._sympy is not None:
            equal = self._sympy.equivalent(_plain(found[0]), _plain(gold_span))
        else:
            equal = False
        if equal:
            out["correct"], out["reason"] = True, OK
        return out

    def _gold(self, text: str) -> tuple[str, Number | None]:
        """The gold's answer text and number. A gold that is not one number is read by
        the extraction rules that mark an answer (``####``, a box, "the answer is",
        ``Answer:``), never by "the last number", which would read ``\\frac{\\sqrt3}{2}``
        as 2; under ``symbolic`` an expression gold is kept whole."""
        number = parse_number(text)
        if number is not None or (self._sympy is not None and self._sympy.parses(text)):
            return text, number
        extracted = extract_answer(text)
        if extracted is None or extracted[1] == "last_number":
            return text, None
        return extracted[0], read_answer(*extracted)

    def _numbers_equal(self, answer: Number, gold: Number) -> bool:
        if self._close(answer.value, gold.value):
            return True
        if self.params.percent == "either" and answer.percent != gold.percent:
            scaled = answer.value / 100 if answer.percent else gold.value / 100
            other = gold.value if answer.percent else answer.value
            return self._close(scaled, other)
        return False

    def _close(self, a: Fraction, b: Fraction) -> bool:
        if a == b:
            return True
        bound = max(self.params.tolerance, self.params.rel_tolerance * abs(float(b)))
        return abs(float(a - b)) <= bound


_UNIT_TAIL = re.compile(r"\s*(?:\\%|%)\s*$")


def _plain(text: str) -> str:
    return _UNIT_TAIL.sub("", normalize(text))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
