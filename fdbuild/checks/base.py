"""The gate-check contract.

A gate has three parts (SPEC 2): ``check`` and ``params`` decide how a row is evaluated
(that evaluation is cached), ``keep`` decides which evaluated rows pass (never cached).
A ``Check`` is only the first part: it maps the row fields it reads to an evaluation
dict whose columns it declares in ``outputs``.

The evaluation cache key (built by the executor) holds: ``name``, ``version``, the
params (canonical), the values of the fields in ``reads()``, and the digest of every
file in ``file_deps()``. Bump ``version`` whenever the evaluation logic changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict


class CheckParams(BaseModel):
    """Base of every check's params model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=CheckParams)


class Check(ABC, Generic[P]):
    """One gate check. Instances are built once per build with validated params.

    A subclass names its params model twice: as the type argument (``Check[MyParams]``,
    which types ``self.params``) and as ``Params`` (which validates them at load time)."""

    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[CheckParams]]  # the class P names (a ClassVar cannot use P)
    outputs: ClassVar[Mapping[str, str]]
    """Columns the evaluation adds, name -> Arrow type ("string", "bool", "double", "int64")."""
    scope: ClassVar[Literal["row", "table"]] = "row"
    """``row``: each row alone (cached per row); ``table``: needs all rows (e.g. dedup)."""
    cpu_bound: bool = False
    """True when evaluating a row costs CPU time (executing SQL or code, symbolic math):
    executors then run its rows in worker processes (``--jobs``) or Ray tasks, which need
    the check to be rebuilt there from its class and params (see fdbuild/executors/).
    A class attribute; an instance may set it from its params. Never keyed."""

    def __init__(self, params: P, base_dir: Path) -> None:
        self.params = params
        self.base_dir = base_dir

    def resolve_path(self, value: str) -> Path:
        """Params paths are relative to the target file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @abstractmethod
    def reads(self) -> Sequence[str]:
        """The row columns this check reads (validated at load time, keyed per row)."""

    def file_deps(self) -> Mapping[str, Path]:
        """Files whose content determines the evaluation (their digests are keyed), by the
        param that names them. Each is checked at load time (missing, or not a file, is an
        error at that param's line); a check that can tell more (the file is not a
        database) raises ``fdbuild.errors.ParamError`` naming the param from ``__init__``."""
        return {}

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Evaluate one row (``scope == "row"``). Must be pure given reads + files."""
        raise NotImplementedError

    def evaluate_table(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Evaluate all rows at once (``scope == "table"``)."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
