"""The local executor: evaluations and parses in the driver process (``--jobs 1``).

Every check and parser runs inline, in the caller's thread, exactly as the gate and
generate nodes did before executors existed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fdbuild.executors.base import Evaluated, Parsed, evaluate_all, parse_all

if TYPE_CHECKING:
    from fdbuild.checks.base import Check
    from fdbuild.parsers.base import Parser


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the OS tells), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Runs everything on this machine."""

    name = "local"

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = default_jobs() if jobs is None else max(1, jobs)

    async def evaluate(
        self, check: Check[Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[Evaluated]:
        return evaluate_all(check, rows)

    async def parse(self, parser: Parser, texts: Sequence[str]) -> list[Parsed]:
        return parse_all(parser, texts)

    async def aclose(self) -> None:
        return None
