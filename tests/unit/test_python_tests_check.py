"""check: python_tests: counting, verdicts and params; every code_mini solution passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from fdbuild.checks import get_check_class
from fdbuild.checks.python_tests import PythonTestsCheck, PythonTestsParams
from fdbuild.checks.sandbox_child import count_tests

REPO = Path(__file__).resolve().parents[2]
TASKS = [
    json.loads(line) for line in (REPO / "examples/code_mini/tasks.jsonl").read_text().splitlines()
]


def check(**params: object) -> PythonTestsCheck:
    return PythonTestsCheck(PythonTestsParams(**params), REPO)


def test_the_example_holds_40_tasks_with_three_or_more_asserts() -> None:
    assert len(TASKS) == 40 and len({t["task_id"] for t in TASKS}) == 40
    assert len({t["entry_point"] for t in TASKS}) == 40
    for task in TASKS:
        assert task["tests"].count("assert") >= 3, task["task_id"]
        assert f"`{task['entry_point']}(" in task["prompt"], task["task_id"]


def test_every_reference_solution_passes_and_a_stub_fails() -> None:
    gate = check(code="solution")
    for task in TASKS:
        out = gate.evaluate(task)
        assert out["reason"] == "ok", (task["task_id"], out)
        assert out["tests_passed"] == out["tests_total"] >= 3
        stub = f"def {task['entry_point']}(*args, **kwargs):\n    return None\n"
        bad = gate.evaluate({"solution": stub, "tests": task["tests"]})
        assert bad["tests_pass"] is False and bad["reason"] == "failed", task["task_id"]
        assert bad["tests_passed"] < bad["tests_total"]


def test_asserts_and_test_functions_each_count_once() -> None:
    tests = (
        "import math\n"
        "assert f(2) == 4\n"
        "def helper(x):\n    return f(x) - 1\n"
        "def test_one():\n    assert helper(1) == 1\n"
        "def test_two():\n    assert f(3) == 7\n"
        "assert math.isclose(f(0.5), 1.0)\n"
    )
    assert count_tests(tests) == 4
    out = check().evaluate({"code": "def f(x):\n    return 2 * x\n", "tests": tests})
    assert (out["tests_passed"], out["tests_total"], out["reason"]) == (3, 4, "failed")
    assert out["tests_pass"] is False
    assert "test_two" in out["detail"] and "AssertionError" in out["detail"]


@pytest.mark.parametrize(
    ("code", "tests", "reason", "detail"),
    [
        ("def f(:\n", "assert f()\n", "error", "SyntaxError"),
        ("raise RuntimeError('at import')\n", "assert True\n", "error", "RuntimeError"),
        ("import sys\nsys.exit(0)\n", "assert True\n", "error", "SystemExit"),
        ("", "assert True\n", "error", "no code"),
        ("x = 1\n", "print(x)\n", "error", "no tests"),
        ("x = 1\n", "assert (\n", "error", "tests do not parse"),
        ("x = [0] * (1 << 40)\n", "assert True\n", "memory", "MemoryError"),
    ],
)
def test_verdicts(code: str, tests: str, reason: str, detail: str) -> None:
    out = check().evaluate({"code": code, "tests": tests})
    assert out["reason"] == reason and out["tests_pass"] is False
    assert detail in out["detail"]


def test_a_timeout_is_a_verdict() -> None:
    out = check(timeout_s=0.5).evaluate({"code": "while True:\n    pass\n", "tests": "assert 1\n"})
    assert (out["reason"], out["tests_passed"], out["tests_total"]) == ("timeout", 0, 1)


def test_reads_the_named_columns() -> None:
    gate = check(code="candidate", tests="checks")
    assert list(gate.reads()) == ["candidate", "checks"]
    out = gate.evaluate({"candidate": "y = 3\n", "checks": "assert y == 3\n"})
    assert out["tests_pass"] is True


def test_params_are_validated() -> None:
    for bad in ({"timeout_s": 0}, {"memory_mb": 1}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            PythonTestsParams(**bad)
    assert PythonTestsParams() == PythonTestsParams(
        code="code", tests="tests", timeout_s=5, memory_mb=512
    )


def test_registered_as_a_builtin() -> None:
    assert get_check_class("python_tests") is PythonTestsCheck
