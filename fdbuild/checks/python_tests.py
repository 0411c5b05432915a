"""The ``python_tests`` gate: run a candidate's code against the row's tests, sandboxed.

The tests column holds assert statements, ``def test_...`` functions, or both (with any
setup statements between them). Each top-level assert and each test function is one
test; ``tests_passed`` counts those that passed, ``tests_total`` all of them, and
``tests_pass`` is true only when every one passed. ``reason`` is one of:

* ``ok``: every test passed; ``failed``: some did not (``detail``: the first failure);
* ``error``: the code did not load (a syntax error, an exception at import, no code),
  the tests do not parse or hold no test, or the interpreter died (a segfault);
* ``timeout``: the wall clock (``timeout_s``) or the CPU limit ran out;
* ``memory``: the address-space limit (``memory_mb``) was hit;
* ``output_limit``: the code printed more than 1 MiB.

Every run goes through ``sandbox.run_tests`` (see there for the layers);
``sandbox_layers`` names the layers that were active for the row, and ``sandbox_class``
sums them up as a short code: ``kernel`` (network and mount namespaces and a uid of its
own), ``in_interpreter`` (none of them: the audit hook stands in), ``partial:<the ones
active>``, or null when nothing ran (no code, no tests). The ``_class`` suffix makes the
gate's quality report count it, so ``fdbuild show`` prints once per gate how its rows
ran (``sandbox_class_counts={kernel: 31, none: 9}``). The
evaluation is cached by content: the code, the tests, the params and ``version``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from fdbuild.checks.sandbox import run_tests
from fdbuild.checks.sandbox_child import count_tests


class PythonTestsParams(CheckParams):
    code: str = Field("code", description="Column holding the candidate code.")
    tests: str = Field("tests", description="Column holding assert statements or test functions.")
    timeout_s: float = Field(5.0, gt=0, le=600, description="Wall-clock limit per row.")
    memory_mb: int = Field(512, ge=64, le=1 << 20, description="Address-space limit per row.")


class PythonTestsCheck(Check[PythonTestsParams]):
    """Annotates tests_pass, tests_passed/total, reason, detail, sandbox_class/layers."""

    name = "python_tests"
    version = "1"
    Params = PythonTestsParams
    cpu_bound = True  # each row runs the code in a sandboxed interpreter
    outputs = {
        "tests_pass": "bool",
        "tests_passed": "int64",
        "tests_total": "int64",
        "reason": "string",
        "detail": "string",
        "sandbox_class": "string",
        "sandbox_layers": "string",
    }

    def __init__(self, params: PythonTestsParams, base_dir: Path) -> None:
        super().__init__(params, base_dir)

    def reads(self) -> Sequence[str]:
        return [self.params.code, self.params.tests]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        code = _text(row.get(self.params.code))
        tests = _text(row.get(self.params.tests))
        try:
            total = count_tests(tests)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            return _out("error", 0, 0, f"tests do not parse: {type(exc).__name__}")
        if total == 0:
            return _out("error", 0, 0, "no tests (no assert, no def test_...)")
        if not code.strip():
            return _out("error", 0, total, "no code")
        verdict = run_tests(
            code, tests, total, timeout_s=self.params.timeout_s, memory_mb=self.params.memory_mb
        )
        return _out(verdict.reason, verdict.passed, total, verdict.detail, verdict.layers)


_KERNEL_LAYERS = ("netns", "ro_fs", "uid")


def sandbox_class(layers: tuple[str, ...]) -> str:
    """``kernel``, ``in_interpreter`` or ``partial:<active kernel layers>``."""
    active = [layer for layer in _KERNEL_LAYERS if layer in layers]
    if len(active) == len(_KERNEL_LAYERS):
        return "kernel"
    return "partial:" + ".".join(active) if active else "in_interpreter"


def _out(
    reason: str, passed: int, total: int, detail: str, layers: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "tests_pass": reason == "ok",
        "tests_passed": passed,
        "tests_total": total,
        "reason": reason,
        "detail": detail or None,
        "sandbox_class": sandbox_class(layers) if layers else None,
        "sandbox_layers": ",".join(layers) or None,
    }


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
