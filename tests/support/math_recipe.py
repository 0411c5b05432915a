"""A plausible math teacher for targets/math_sft.yaml (examples/math_mini).

Deterministic per (model, question, seed): most replies solve the problem and write the
gold answer in one of the forms a real teacher uses (a plain number, ``$1,485``,
``\\boxed{}``, "The answer is ..."); about one in six gives a wrong answer, one in
eleven forgets the delimiters (a parse failure, which is data and is not kept).
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from tests.support.ollama_server import Reply

REPO = Path(__file__).resolve().parents[2]
MATH_EXAMPLE = REPO / "examples/math_mini"
MATH_ROWS = [json.loads(line) for line in (MATH_EXAMPLE / "train.jsonl").read_text().splitlines()]
_BY_QUESTION = {row["question"]: row for row in MATH_ROWS}
MARKER = "grade-school math word problems"  # in targets/math_sft.yaml's system prompt


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:8], "big")


def _grouped(gold: str) -> str:
    value = Fraction(gold)
    if value.denominator != 1 or abs(value) < 1000:
        return gold
    return f"{value.numerator:,}"


def expected_correct(model: str, question: str, seed: int) -> bool:
    """Whether ``math_reply`` answers this problem with its gold (and delimiters)."""
    h = _h(model, question, seed)
    return h % 6 != 0 and h % 11 != 1


def math_reply(request: dict[str, Any]) -> Reply | None:
    """The reply to a math_sft request, or None for any other request."""
    messages = request["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if MARKER not in system:
        return None
    question = messages[-1]["content"].strip()
    row = _BY_QUESTION[question]
    seed = request.get("options", {}).get("seed", 0)
    h = _h(request["model"], question, seed)
    steps = f"Compute {row['solution_expr']}.\nThat gives {row['gold']}."
    if h % 11 == 1:
        return Reply(f"{steps}\nSo the result is {row['gold']}.")  # no delimiters
    gold = row["gold"]
    answer = str(Fraction(gold) + 1) if h % 6 == 0 else gold
    forms = [answer, f"${_grouped(answer)}", f"\\boxed{{{answer}}}", f"The answer is {answer}."]
    return Reply(f"### RATIONALE\n{steps}\n### ANSWER\n{forms[h % 4]}")
