"""The Ray executor (``--executor ray [--ray-address ADDR]``): CPU-bound work as Ray tasks.

What runs on the cluster: the rows of a CPU-bound check (``cpu_bound``) and every parse
of a generate node's replies, in batches, one Ray task per batch (``ray.remote`` with
Ray's own retries: no scheduler or sockets of ours). Cheap checks run inline in the
driver, as with the local executor. Teacher calls never go to the cluster: they stay
asynchronous HTTP from the driver.

What a worker gets: a ``Shipment`` (``shipping.py``) put once in Ray's object store per
check or parser: the class by reference (a plugin file by its source bytes), the params,
and the content of every file the check depends on (``file_deps()``, e.g. the
``sqlite_exec`` database), which the worker writes to a temporary folder of its own. A
worker never reads the project or ``.fdbuild/``: a cluster's nodes need fdbuild (the
same version) installed, nothing else.

What the driver keeps: every key, cache entry, artifact and the lock. A task returns
its whole batch's results or nothing, so a worker lost mid-batch means Ray runs the
batch again (``max_retries``), never a row lost or written twice; results are put back
in input order, so the state on disk is exactly a local build's. A batch Ray gives up on
(the retries spent) is an error for each of its rows (failed rows, retried by the next
build); a parse batch it gives up on ends the build, since a parse has no failed state.

ADDR is Ray's own ``address`` (``ray://host:10001``, ``host:6379``, ``auto``: the
cluster ``ray start`` runs on this machine). Without it: ``$RAY_ADDRESS`` when set, else
a new local Ray over all the cores, ended with the build (never an existing cluster
found by chance: on a shared machine that may be somebody else's, unreachable one).
``--jobs`` is the local executor's; a Ray cluster's size is its own. Ray is imported
only here, when asked for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fdbuild.errors import FdbuildError, SpecError
from fdbuild.executors.base import Evaluated, Parsed, evaluate_all, parse_all
from fdbuild.executors.local import batch_size, project, split
from fdbuild.executors.shipping import (
    NotShippable,
    Shipment,
    Unavailable,
    run_checks,
    run_parses,
    ship_check,
    ship_parser,
)

if TYPE_CHECKING:
    from fdbuild.checks.base import Check
    from fdbuild.parsers.base import Parser

INSTALL_HINT = "pip install 'fdbuild[ray]'"
MAX_RETRIES = 3
"""Times Ray re-runs a batch whose worker died (Ray's own task retries)."""


def import_ray() -> Any:
    """The ``ray`` module, or a ``SpecError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecError(
            f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


class RayExecutor:
    """Runs CPU-bound checks and parses as Ray tasks; connects when built."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        batch_rows: int | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.ray = import_ray()
        self.address = address
        self.batch_rows = batch_rows
        """Rows (or texts) per task; None: ``batch_size()`` over the cluster's CPUs."""
        self.notes: list[str] = []
        """Why something ran in the driver although it would go to the cluster."""
        self.max_retries = max_retries
        self._owned = False
        # A wrong address is said at the start; Ray itself is started (or joined) only
        # when the first batch goes to it: a dry run or a no-op build never waits for it.
        _reachable(self.address or os.environ.get("RAY_ADDRESS"))
        self._tasks: tuple[Any, Any] | None = None
        self._refs: dict[int, tuple[Any, Any]] = {}
        self._cpus: int | None = None

    def _remote(self) -> tuple[Any, Any]:
        """The two remote functions (checks, parses), connecting to Ray on first use."""
        if self._tasks is None:
            self._connect()
            remote = self.ray.remote(max_retries=self.max_retries, retry_exceptions=False)
            self._tasks = (remote(run_checks), remote(run_parses))
        return self._tasks

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # this process is already a Ray driver: use its cluster
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # log_to_driver off: Ray would print its workers' output and its own notices
        # ("a worker died") on this process's stdout, which is --json's
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs: dict[str, Any] = {
            "address": address,
            "logging_level": logging.WARNING,
            "log_to_driver": False,
        }
        if address == "local":  # a Ray of our own: no dashboard for it
            kwargs["include_dashboard"] = False
        _notices_to_stderr()
        _reachable(address)
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError...
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise FdbuildError(
                f"--executor ray: cannot start or reach {where}: {exc}{_auth_hint(exc)}"
            ) from None
        self._owned = True

    async def evaluate(
        self, check: Check[Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[Evaluated]:
        cpu = bool(getattr(check, "cpu_bound", False)) and check.scope == "row"
        if not rows or not cpu:
            return evaluate_all(check, rows)
        ref = self._shipment(check, lambda: ship_check(check, by_value=True))
        if ref is None:
            return evaluate_all(check, rows)
        batches = split(project(check, rows), self._batch(len(rows)))
        results = await self._gather(self._remote()[0], ref, batches)
        out: list[Evaluated] = []
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, Unavailable):
                self._inline(check, f"a Ray worker could not rebuild it: {result.reason}")
                out += evaluate_all(check, batch)
            elif isinstance(result, BaseException):
                message = f"{type(result).__name__}: {result}"
                out += [("error", message) for _ in batch]
            else:
                out += result
        return out

    async def parse(self, parser: Parser, texts: Sequence[str]) -> list[Parsed]:
        if not texts:
            return []
        ref = self._shipment(parser, lambda: ship_parser(parser))
        if ref is None:
            return parse_all(parser, texts)
        batches = split(list(texts), self._batch(len(texts)))
        results = await self._gather(self._remote()[1], ref, batches)
        out: list[Parsed] = []
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, Unavailable):
                self._inline(parser, f"a Ray worker could not rebuild it: {result.reason}")
                out += parse_all(parser, batch)
            elif isinstance(result, BaseException):
                raise FdbuildError(
                    f"--executor ray: Ray gave up on a batch of {len(batch)} parses of "
                    f"parser '{parser.name}' after {self.max_retries} retries: {result}"
                )
            else:
                out += result
        return out

    async def aclose(self) -> None:
        self._refs.clear()
        if self._owned and self.ray.is_initialized():
            self._owned = False
            self.ray.shutdown()

    async def _gather(self, task: Any, ref: Any, batches: list[list[Any]]) -> list[Any]:
        """Every batch as one task; results in order. A task Ray gave up on (worker lost
        more than ``max_retries`` times) is its exception; an exception the task itself
        raised (a parser's bug) propagates. Cancelled: the tasks are cancelled too."""
        refs = [task.remote(ref, batch) for batch in batches]
        futures = [asyncio.wrap_future(r.future()) for r in refs]
        try:
            results = await asyncio.gather(*futures, return_exceptions=True)
        except asyncio.CancelledError:
            for r in refs:
                self.ray.cancel(r)
            raise
        for result in results:
            if isinstance(result, self.ray.exceptions.RayTaskError):
                raise result
        return list(results)

    def _batch(self, items: int) -> int:
        if self.batch_rows:
            return self.batch_rows
        if self._cpus is None:
            self._cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        return batch_size(items, self._cpus)

    def _shipment(self, obj: Any, ship: Callable[[], Shipment]) -> Any:
        """The object-store reference of ``obj``'s shipment (put once), or None: it runs
        inline (it cannot be shipped; ``notes`` says why)."""
        known = self._refs.get(id(obj))
        if known is not None and known[0] is obj:
            return known[1]
        self._remote()
        try:
            ref = self.ray.put(ship())
        except (NotShippable, OSError) as exc:
            ref = None
            self._note(obj, str(exc))
        self._refs[id(obj)] = (obj, ref)
        return ref

    def _inline(self, obj: Any, reason: str) -> None:
        self._refs[id(obj)] = (obj, None)
        self._note(obj, reason)

    def _note(self, obj: Any, reason: str) -> None:
        what = "parser" if hasattr(obj, "parse") and not hasattr(obj, "evaluate") else "check"
        note = f"{what} '{obj.name}' runs in the driver, not on Ray: {reason}"
        if note not in self.notes:
            self.notes.append(note)


def _notices_to_stderr() -> None:
    """Ray's driver prints the cluster's error notices ("a worker died ...") on stdout,
    from a thread of its own, whatever ``log_to_driver`` says; fdbuild's stdout is the
    ``--json`` summary. This sends them to stderr (Ray has no setting for it: the
    function it calls is replaced, and left alone if a Ray version has none)."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "fdbuild_stderr", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr.fdbuild_stderr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def _auth_hint(exc: BaseException) -> str:
    """A cluster with token authentication (Ray's default for a cluster started where
    ``~/.ray/auth_token`` exists) refuses a driver that connects by an explicit address
    unless ``RAY_AUTH_MODE=token`` is set: Ray's rule, said here, since Ray's own message
    is only in the exception's cause."""
    cause: BaseException | None = exc
    while cause is not None:
        if "AuthenticationError" in type(cause).__name__ or "InvalidAuthToken" in str(cause):
            return (
                " (the cluster requires token authentication: set RAY_AUTH_MODE=token, "
                "with the cluster's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN)"
            )
        cause = cause.__cause__ or cause.__context__
    return ""


REACH_TIMEOUT_S = 10.0


def _reachable(address: str | None) -> None:
    """A ``host:port`` nobody listens on is one clear error within seconds: ``ray.init``
    itself retries for minutes before it gives up. Other forms (``auto``, ``ray://``,
    none) are left to Ray."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise FdbuildError(
            f"--executor ray: nothing answers at --ray-address {address} ({exc}); is the "
            "cluster up (`ray status --address ...`)? Start one with `ray start --head`"
        ) from None
