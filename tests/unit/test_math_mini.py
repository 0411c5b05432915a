"""examples/math_mini: every gold answer is recomputed from its ``solution_expr`` with
exact fractions (not the float arithmetic make_mini.py used), so a typo in a gold or an
expression fails here; the file is what make_mini.py writes."""

from __future__ import annotations

import ast
import importlib.util
import json
import operator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from fdbuild.checks.math_answer import MathAnswerCheck, MathAnswerParams

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/math_mini"
ROWS = [json.loads(line) for line in (EXAMPLE / "train.jsonl").read_text().splitlines()]

_BINARY: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}


def exact(node: ast.AST) -> Fraction:
    """The exact value of an arithmetic expression: literals read as decimals."""
    if isinstance(node, ast.Expression):
        return exact(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -exact(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return Fraction(_BINARY[type(node.op)](exact(node.left), exact(node.right)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round":
        value, digits = (exact(a) for a in node.args)
        return Fraction(round(value, int(digits)))
    raise AssertionError(f"not plain arithmetic: {ast.dump(node)}")


def test_forty_problems_with_unique_ids() -> None:
    assert len(ROWS) == 40
    assert len({r["id"] for r in ROWS}) == 40
    assert len({r["question"] for r in ROWS}) == 40
    assert all(set(r) == {"id", "question", "solution_expr", "gold"} for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_gold_is_the_expression_value(row: dict[str, str]) -> None:
    value = exact(ast.parse(row["solution_expr"], mode="eval"))
    assert Fraction(row["gold"]) == value
    # the gold is a plain number (GSM8K style) that math_answer reads as itself
    check = MathAnswerCheck(MathAnswerParams(tolerance=0), Path("."))
    assert check.compare(f"#### {row['gold']}", row["gold"])["reason"] == "ok"


def test_file_is_what_make_mini_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_mini", EXAMPLE / "make_mini.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.rows() == ROWS
