"""``vote`` nodes: Data Distillation's selection, one candidate per input row.

A generate node with ``n`` candidates (and maybe several decode profiles) emits many rows
per input; the gates annotate them. A vote groups them by ``_parent`` and keeps one:

* agreement (no ``score``): candidates whose ``by`` values are equal form a group (by
  default ``result_sig``, the execution-result signature of ``sqlite_exec``), and the
  largest group wins: self-consistency, with no gold needed. Equally large groups are a
  tie, broken by candidate order (the group whose first member came first) and counted;
* best score (``score: col``): the highest-scored candidate wins; equal scores are broken
  by the larger agreement group, then by candidate order.

Only candidates passing the gates vote (``only_passed``, ``gates``), and a null ``by``
(or null score) does not vote: a query that failed to run has no result to agree on.
The pick is the winning group's first member, annotated with ``vote_size`` (candidates
agreeing with it), ``vote_total`` (all candidates of that input, voters or not) and
``vote_share = vote_size / vote_total``: "3 of 4 candidates agreed" is the confidence
the paper filters on (``min_share``). Counting non-voters in the total keeps a lone
survivor of four from looking unanimous.

The node is deterministic in its input rows, so it is never cached per row: it reruns
(cheaply, no teacher) only when its input digest or its recipe changes. Two streamed
passes keep memory bounded: the first reads only the ranking fields, the second writes
the picks in input order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fdbuild import columns as C
from fdbuild.execute.context import NodeStats
from fdbuild.execute.schema import extend_schema
from fdbuild.keys import canonical_json
from fdbuild.nodes.base import WholeInputKind
from fdbuild.spec.graph import GraphNode

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Candidate:
    """What the decision needs of one row: its position, and whether and how it votes."""

    index: int
    votes: bool
    group: str | None
    score: float | None


def vote_recipe(node: GraphNode) -> dict[str, Any]:
    spec = node.spec
    return {
        "kind": "vote",
        "by": spec.by,
        "score": spec.score,
        "only_passed": spec.only_passed,
        "gates": spec.gates,
        "min_share": spec.min_share,
    }


def group_key(value: Any) -> str | None:
    """A hashable, type-faithful key for a ``by`` value (``1`` and ``"1"`` differ)."""
    if value is None:
        return None
    return "s:" + value if isinstance(value, str) else "j:" + canonical_json(value)


def gate_columns(schema_names: Iterable[str], gates: list[str] | None) -> list[str]:
    """The verdict columns that count: the named gates', else every gate's upstream."""
    return [C.pass_col(g) for g in gates] if gates else C.pass_columns(list(schema_names))


def passed(row: dict[str, Any], verdicts: list[str]) -> bool:
    return all(row.get(c) is True for c in verdicts)


def _score(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Pick:
    index: int
    size: int
    total: int

    @property
    def share(self) -> float:
        return round(self.size / self.total, 6)


def decide(candidates: list[Candidate], by_score: bool) -> tuple[Pick | None, bool]:
    """The pick among one input's candidates, and whether a tie had to be broken."""
    total = len(candidates)
    if by_score:
        voters = [c for c in candidates if c.votes and c.score is not None]
    else:
        voters = [c for c in candidates if c.votes and c.group is not None]
    if not voters:
        return None, False
    groups: dict[str, list[Candidate]] = {}
    for c in voters:
        if c.group is not None:
            groups.setdefault(c.group, []).append(c)
    if not by_score:
        largest = max(len(g) for g in groups.values())
        winners = [g for g in groups.values() if len(g) == largest]
        return Pick(winners[0][0].index, largest, total), len(winners) > 1

    def agreement(c: Candidate) -> int:
        return len(groups[c.group]) if c.group is not None else 1

    best = max(c.score for c in voters if c.score is not None)
    top = [c for c in voters if c.score == best]
    most = max(agreement(c) for c in top)
    winners_s = [c for c in top if agreement(c) == most]
    distinct = {c.group if c.group is not None else f"#{c.index}" for c in top}
    return Pick(winners_s[0].index, most, total), len(distinct) > 1


def run_vote(build: Any, node: GraphNode, input_digest: str, stats: NodeStats) -> Any:
    import pyarrow as pa

    spec = node.spec
    schema = build.outputs.schema(input_digest)
    verdicts = gate_columns(schema.names, spec.gates) if spec.only_passed else []
    by_parent: dict[str, list[Candidate]] = {}
    index = 0
    for batch in build.outputs.batches(input_digest):
        for row in batch:
            votes = passed(row, verdicts)
            score = _score(row.get(spec.score)) if spec.score else None
            by_parent.setdefault(row[C.PARENT], []).append(
                Candidate(index, votes, group_key(row.get(spec.by)), score)
            )
            index += 1
    stats.rows_in = index
    stats.computed = index
    picks: dict[int, Pick] = {}
    counts = {"inputs": len(by_parent), "picked": 0, "no_voters": 0, "ties": 0, "below_share": 0}
    for candidates in by_parent.values():
        pick, tie = decide(candidates, by_score=spec.score is not None)
        counts["ties"] += tie
        if pick is None:
            counts["no_voters"] += 1
        elif pick.share < spec.min_share:
            counts["below_share"] += 1
        else:
            picks[pick.index] = pick
    counts["picked"] = len(picks)
    shares = [p.share for p in picks.values()]
    mean_share = round(sum(shares) / len(shares), 4) if shares else None
    stats.extra["vote"] = {**counts, "mean_share": mean_share}
    writer = build.outputs.writer(
        extend_schema(
            schema, {"vote_size": pa.int64(), "vote_total": pa.int64(), "vote_share": pa.float64()}
        )
    )
    index = 0
    for batch in build.outputs.batches(input_digest):
        for row in batch:
            pick = picks.get(index)
            index += 1
            if pick is not None:
                writer.write(
                    {
                        **row,
                        "vote_size": pick.size,
                        "vote_total": pick.total,
                        "vote_share": pick.share,
                    }
                )
    return writer


class VoteKind(WholeInputKind):
    name = "vote"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return vote_recipe(node)

    def compute(
        self, build: Any, node: GraphNode, digests: list[str | None], stats: NodeStats
    ) -> Any:
        assert digests[0] is not None
        return run_vote(build, node, digests[0], stats)
