"""A no-op build's funnel is its previous run's: reuse it instead of recounting.

The funnel (``fdbuild/funnel.py``) counts the rows that survive each step of a chain by
reading the node outputs' ``_id`` and verdict columns. Counted again on every build,
that is most of a no-op: at 1M rows it imports pyarrow (and pandas) and reads every
chain artifact into Python (seconds, and ~0.9 GB of memory), to find the numbers the
previous run already recorded.

What the funnel depends on is all in the run record's nodes: the kind, the recipe (``n``,
profiles, ``parse``, ``keep``, ``prefix``, the check), the input digests (which node
feeds which), the output digest and row count (which rows), and ``rows_in`` (of a
node with inputs) and ``failed``. Each node's ``key`` is the hash of its recipe and input digests, and an
output is named by the digest of its rows. So when every node of this run has the key,
input digests, output, ``rows_in``, ``failed`` and ``pending`` of the previous run of the
same target, its funnel is the previous funnel, exactly. Anything else (a node more or
less, a changed rule, an unreadable previous record, one without a funnel) counts again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fdbuild.errors import FdbuildError
from fdbuild.project import Project

__all__ = ["reusable_funnel"]


def reusable_funnel(
    project: Project, previous_run: str | None, nodes: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """The previous run's funnel when this run's ``nodes`` are unchanged, else None."""
    if not previous_run:
        return None
    from fdbuild.runs import parse_run, run_path

    try:
        previous = parse_run(project, run_path(project, previous_run))
    except (FdbuildError, OSError):  # gone, garbled: count again
        return None
    funnel = (previous.get("reports") or {}).get("funnel")
    before = previous.get("nodes")
    if not funnel or not isinstance(funnel, list):  # an empty one costs nothing to recount
        return None
    if not isinstance(before, dict) or set(before) != set(nodes):
        return None
    for name, node in nodes.items():
        old = before[name]
        if not isinstance(old, dict) or _identity(node) != _identity(old):
            return None
    return funnel


def _identity(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything of a node record the funnel reads (the recipe through ``key``)."""
    stats = node.get("stats") or {}
    output = node.get("output") or {}
    return (
        node.get("kind"),
        node.get("key"),
        list(node.get("input_digests") or []),
        output.get("digest"),
        output.get("rows"),
        # a source has no inputs: its rows_in is the rows it read, 0 on a memo hit
        None if node.get("kind") == "source" else stats.get("rows_in"),
        stats.get("failed"),
        bool(node.get("pending")),
    )
