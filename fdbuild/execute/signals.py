"""SIGTERM ends a build the way Ctrl-C does: cleanly, keeping everything finished.

The CLI installs ``raise_terminated`` as the process's SIGTERM handler, so a SIGTERM
outside the event loop (loading targets, writing records) raises ``Terminated``. While
the graph runs, ``sigterm_cancels`` swaps it for a loop handler that cancels the build's
task instead, as asyncio does for SIGINT: the workers are cancelled at an ``await``, not
interrupted mid-write, the teachers' connections close, and the build raises
``Terminated`` (exit 143). A library caller that did not opt in keeps its own handler.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from fdbuild.errors import Terminated


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def sigterm_handler() -> Iterator[None]:
    """Install ``raise_terminated`` for the duration (the CLI's ``main``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def sigterm_cancels(stop: Callable[[BaseException], None]) -> Iterator[None]:
    """Inside a running loop: SIGTERM calls ``stop(Terminated())`` instead of raising."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not raise_terminated
    ):
        yield
        return
    import asyncio  # here: the CLI imports this module for every command

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, lambda: stop(Terminated()))
    except (NotImplementedError, RuntimeError, ValueError):  # no signals on this loop
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, raise_terminated)
