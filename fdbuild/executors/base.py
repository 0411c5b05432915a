"""The executor contract: where a gate's row evaluations and a generate node's parses run.

The driver (the build) owns every key, cache entry, artifact and the lock. An executor
only computes: it takes a check (or parser) and a list of rows (or texts) and hands back
one result per input, in input order. Where the work runs is its own business: inline in
the driver, in a local process pool (``local.py``), or as Ray tasks on a cluster
(``ray_.py``). Because the results are plain values in input order, a build's state on
disk does not depend on the executor; none of the executor options is keyed.

A row whose check raises is ``("error", "TypeName: message")``, never an exception that
ends the batch: one bad row must not lose the others (the gate records it as failed).
A parse that raises ``ParseFailure`` is ``("fail", reason)``: that is data (the
``parse_error`` column), not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union

from fdbuild.parsers.base import ParseFailure

if TYPE_CHECKING:
    from fdbuild.checks.base import Check
    from fdbuild.parsers.base import Parser

Evaluated = Union[tuple[Literal["ok"], dict[str, Any]], tuple[Literal["error"], str]]
"""One row's evaluation: ``("ok", evaluation)`` or ``("error", "TypeName: message")``."""

Parsed = Union[tuple[Literal["ok"], dict[str, Any]], tuple[Literal["fail"], str]]
"""One text's parse: ``("ok", columns)`` or ``("fail", ParseFailure.reason)``."""


class Executor(Protocol):
    """Runs evaluations and parses; results come back in input order."""

    name: str
    """``local`` or ``ray``."""
    notes: list[str]
    """Why something that would run in workers ran in the driver instead (a check that
    cannot be rebuilt there), once per check or parser: for the build to show."""

    async def evaluate(
        self, check: Check[Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[Evaluated]:
        """``check.evaluate(row)`` for each row (``scope == "row"`` checks only)."""
        ...

    async def parse(self, parser: Parser, texts: Sequence[str]) -> list[Parsed]:
        """``parser.parse(text)`` for each text."""
        ...

    async def aclose(self) -> None:
        """Release worker processes or the cluster connection (idempotent)."""
        ...


def evaluate_one(check: Check[Any], row: Mapping[str, Any]) -> Evaluated:
    """One row, inline: what every executor computes for it, wherever it runs."""
    try:
        return ("ok", check.evaluate(row))
    except Exception as exc:  # noqa: BLE001 - a check bug is that row's failure
        return ("error", error_text(exc))


def parse_one(parser: Parser, text: str) -> Parsed:
    """One text, inline. Any other exception than ``ParseFailure`` propagates: a parser
    that crashes is a bug, as it is without an executor."""
    try:
        return ("ok", parser.parse(text))
    except ParseFailure as exc:
        return ("fail", exc.reason)


def evaluate_all(check: Check[Any], rows: Sequence[Mapping[str, Any]]) -> list[Evaluated]:
    return [evaluate_one(check, row) for row in rows]


def parse_all(parser: Parser, texts: Sequence[str]) -> list[Parsed]:
    return [parse_one(parser, text) for text in texts]


def error_text(exc: BaseException) -> str:
    """``TypeName: message``, the form a gate records as the row's ``check_error``."""
    return f"{type(exc).__name__}: {exc}"
