"""The shapes of ``fdbuild.lock`` and of run records, checked when they are read.

Both files are written by fdbuild, but they are files: a hand edit, a bad merge of the
lock, a truncated copy or a flipped byte can leave JSON or YAML that parses and has the
wrong shape (``targets: [1, 2]``). Without a check that surfaces deep inside the build
or a renderer as an ``AttributeError``; with it, the reader stops at once with the file
and the key (``fdbuild.lock:3: targets: expected a mapping, got a list``).

A small hand validator rather than pydantic models: the lock is read by every build,
the no-op one included, and building models costs more start-up time than checking a
few dozen keys (well under a millisecond here). Only the keys fdbuild reads are checked;
unknown keys are allowed, so a record written by a later fdbuild of the same schema
still reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fdbuild.errors import BadLockfile, BadRunRecord

__all__ = ["BadLockfile", "BadRunRecord", "ShapeError", "check_lock", "check_run"]

Path_ = tuple[str | int, ...]


class ShapeError(Exception):
    """Where a value has the wrong shape: ``key`` path and what was expected."""

    def __init__(self, key: Path_, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message

    def key_text(self) -> str:
        return key_text(self.key)

    def __str__(self) -> str:
        return f"{self.key_text()}: {self.message}" if self.key else self.message


def key_text(key: Path_) -> str:
    """``targets.quickstart.nodes.sql`` (list items as ``[i]``); ``(top level)`` for ()."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


# --------------------------------------------------------------------------- shapes

Check = Callable[[Any, Path_], None]


def _scalar(name: str, ok: Callable[[Any], bool], nullable: bool) -> Check:
    def check(value: Any, key: Path_) -> None:
        if value is None and nullable:
            return
        if not ok(value):
            raise ShapeError(key, f"expected {name}, got {_kind(value)}")

    return check


def text(nullable: bool = False) -> Check:
    return _scalar("a string", lambda v: isinstance(v, str), nullable)


def integer(nullable: bool = False) -> Check:
    return _scalar("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), nullable)


def number(nullable: bool = False) -> Check:
    return _scalar(
        "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), nullable
    )


def boolean(nullable: bool = False) -> Check:
    return _scalar("a boolean", lambda v: isinstance(v, bool), nullable)


def anything(value: Any, key: Path_) -> None:
    return None


def list_of(item: Check, nullable: bool = False) -> Check:
    def check(value: Any, key: Path_) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, list):
            raise ShapeError(key, f"expected a list, got {_kind(value)}")
        for i, v in enumerate(value):
            item(v, (*key, i))

    return check


def map_of(item: Check, nullable: bool = False) -> Check:
    """A mapping with string keys (names), every value of shape ``item``."""

    def check(value: Any, key: Path_) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, Mapping):
            raise ShapeError(key, f"expected a mapping, got {_kind(value)}")
        for k, v in value.items():
            if not isinstance(k, str):
                raise ShapeError((*key, str(k)), f"expected a name (string) as key, got {_kind(k)}")
            item(v, (*key, k))

    return check


@dataclass(frozen=True)
class Fields:
    """A mapping with known keys: ``required`` must be there, ``optional`` may be."""

    required: Mapping[str, Check]
    optional: Mapping[str, Check]
    nullable: bool = False

    def __call__(self, value: Any, key: Path_) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, Mapping):
            raise ShapeError(key, f"expected a mapping, got {_kind(value)}")
        for name, check in self.required.items():
            if name not in value:
                raise ShapeError(key, f"missing key '{name}'")
            check(value[name], (*key, name))
        for name, check in self.optional.items():
            if name in value:
                check(value[name], (*key, name))


def fields(nullable: bool = False, /, **spec: Check) -> Fields:
    """``fields(run=text(), parent=text(True))``: a trailing ``_`` marks an optional key."""
    required = {k: c for k, c in spec.items() if not k.endswith("_")}
    optional = {k[:-1]: c for k, c in spec.items() if k.endswith("_")}
    return Fields(required, optional, nullable)


# --------------------------------------------------------------------------- the two files

_OUTPUT = fields(digest_=text(True), rows_=integer(True))
_TEACHER = fields(
    provider_=text(True),
    model_=text(True),
    digest_=text(True),
    server_version_=text(True),
    key_=text(True),
)

LOCK_NODE = fields(
    kind=text(),
    recipe_=map_of(anything, True),
    input_digests_=list_of(text(True), True),
    output=_OUTPUT,
)
LOCK_TARGET = fields(
    run=text(),
    parent_=text(True),
    file_=text(True),
    overrides_=list_of(text(), True),
    teachers_=map_of(_TEACHER, True),
    nodes_=map_of(LOCK_NODE, True),
)
LOCK = fields(schema=integer(), targets_=map_of(LOCK_TARGET, True))

RUN_NODE = fields(
    kind=text(),
    recipe_=map_of(anything, True),
    key_=text(True),
    input_digests_=list_of(text(True), True),
    output=_OUTPUT,
    reasons_=list_of(text(), True),
    stats_=map_of(anything, True),
    pending_=boolean(True),
)
RUN = fields(
    schema_=integer(True),
    run_id=text(),
    parent_=text(True),
    target_=text(True),
    file_=text(True),
    status_=text(True),
    started_at_=text(True),
    finished_at_=text(True),
    wall_s_=number(True),
    argv_=list_of(text(), True),
    overrides_=list_of(text(), True),
    offline_=boolean(True),
    from_lock_=boolean(True),
    teachers_=map_of(_TEACHER, True),
    nodes_=map_of(RUN_NODE, True),
    node_order_=list_of(text(), True),
    failures_=list_of(map_of(anything), True),
    totals_=fields(True, teacher_calls_=integer(True), failed_=integer(True)),
    reports_=fields(
        True,
        quality_=map_of(map_of(anything), True),
        timing_=map_of(map_of(anything), True),
    ),
)


def check_lock(data: Any) -> None:
    """Raise ``ShapeError`` where a parsed lock has the wrong shape."""
    LOCK(data, ())


def check_run(data: Any, run_id: str | None = None) -> None:
    """Raise ``ShapeError`` where a parsed run record has the wrong shape, or names
    another run than its file (``run_id``: the file's stem)."""
    RUN(data, ())
    if run_id is not None and data["run_id"] != run_id:
        raise ShapeError(("run_id",), f"'{data['run_id']}' is not the run its file names")
