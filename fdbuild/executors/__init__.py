"""Executors: where CPU-bound work (gate evaluations, reply parses) runs.

``make_executor(options)`` picks one from the build options (``--executor``, ``--jobs``,
``--ray-address``); see ``base.py`` for the contract, ``local.py`` and ``ray_.py`` for
the two kinds. Ray is imported only when ``--executor ray`` asks for it.
"""

from __future__ import annotations

from typing import Any

from fdbuild.executors.base import Evaluated, Executor, Parsed

__all__ = ["Evaluated", "Executor", "Parsed", "make_executor"]


def make_executor(options: Any) -> Executor:
    """The executor ``options`` (a ``BuildOptions``) asks for: ``local`` (default) or
    ``ray``. Options a build made before they existed (no attribute) mean local."""
    kind = getattr(options, "executor", "local") or "local"
    if kind == "ray":
        from fdbuild.executors.ray_ import RayExecutor

        return RayExecutor(address=getattr(options, "ray_address", None))
    from fdbuild.executors.local import LocalExecutor

    return LocalExecutor(jobs=getattr(options, "jobs", None))
