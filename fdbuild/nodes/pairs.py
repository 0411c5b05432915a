"""``pairs`` nodes: Direct Preference KD's (chosen, rejected) pairs from scored candidates.

Per input row (candidates grouped by ``_parent``), among the candidates that have a
score and a non-empty response:

* chosen = the best by ``score`` among those passing the gates (``require_passed``,
  ``gates``): a pair must never teach the student to prefer a query that does not run;
* rejected = the worst of the others (``rejected: worst``, one pair per input), or every
  other one (``rejected: all``, one pair per worse candidate). Failing the gates is no
  bar to being rejected: it is what a rejected answer usually looks like;
* the pair is kept when ``margin = chosen_score - rejected_score`` reaches
  ``min_margin`` (and is above 0: equal scores carry no preference).

Inputs that give no pair are skipped and counted in the run record under
``stats.pairs``: ``single`` (fewer than two scored candidates), ``no_chosen`` (none passes
the gates), ``ties`` (the best and the worst score are equal), ``below_margin``.

Margins are rounded to 9 decimals before the comparison, so ``0.7 - 0.4`` reaches a
``min_margin`` of 0.3 as a person reading the scores expects. Editing ``min_margin``
changes only this node's recipe: no candidate is regenerated and no judge is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fdbuild import columns as C
from fdbuild.execute.context import NodeStats
from fdbuild.nodes.base import WholeInputKind
from fdbuild.nodes.vote import gate_columns, passed
from fdbuild.spec.graph import GraphNode

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Scored:
    index: int
    score: float
    passed: bool


@dataclass(frozen=True)
class Pair:
    chosen: int
    rejected: int
    margin: float


def pairs_recipe(node: GraphNode) -> dict[str, Any]:
    spec = node.spec
    return {
        "kind": "pairs",
        "score": spec.score,
        "min_margin": spec.min_margin,
        "require_passed": spec.require_passed,
        "gates": spec.gates,
        "response": spec.response,
        "rejected": spec.rejected,
    }


def margin(a: float, b: float) -> float:
    return round(a - b, 9)


def decide(
    candidates: list[Scored], min_margin: float, all_rejected: bool
) -> tuple[list[Pair], str]:
    """The pairs of one input and the outcome: ``pair``, ``single``, ``no_chosen``,
    ``ties`` or ``below_margin``. Order breaks equal scores: the first best is chosen,
    the first worst rejected."""
    if len(candidates) < 2:
        return [], "single"
    eligible = [c for c in candidates if c.passed]
    if not eligible:
        return [], "no_chosen"
    chosen = max(eligible, key=lambda c: c.score)  # max keeps the first of equals
    others = [c for c in candidates if c.index != chosen.index]
    if all_rejected:
        rejected = sorted(others, key=lambda c: (c.score, c.index))
    else:
        rejected = [min(others, key=lambda c: c.score)]
    pairs = [Pair(chosen.index, r.index, margin(chosen.score, r.score)) for r in rejected]
    kept = [p for p in pairs if p.margin > 0 and p.margin >= min_margin]
    if kept:
        return kept, "pair"
    widest = max(p.margin for p in pairs)
    return [], "ties" if widest <= 0 else "below_margin"


def _usable(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def run_pairs(build: Any, node: GraphNode, input_digest: str, stats: NodeStats) -> Any:
    spec = node.spec
    schema = build.outputs.schema(input_digest)
    verdicts = gate_columns(schema.names, spec.gates) if spec.require_passed else []
    by_parent: dict[str, list[Scored]] = {}
    index = 0
    for batch in build.outputs.batches(input_digest):
        for row in batch:
            group = by_parent.setdefault(row[C.PARENT], [])
            score = row.get(spec.score)
            if score is not None and _usable(row.get(spec.response)):
                group.append(Scored(index, float(score), passed(row, verdicts)))
            index += 1
    stats.rows_in = index
    stats.computed = index
    counts = {
        "inputs": len(by_parent),
        "pairs": 0,
        "single": 0,
        "no_chosen": 0,
        "ties": 0,
        "below_margin": 0,
    }
    chosen: list[Pair] = []
    for candidates in by_parent.values():
        pairs, outcome = decide(candidates, spec.min_margin, spec.rejected == "all")
        if outcome != "pair":
            counts[outcome] += 1
        chosen.extend(pairs)
    counts["pairs"] = len(chosen)
    stats.extra["pairs"] = counts
    wanted = {p.chosen for p in chosen} | {p.rejected for p in chosen}
    rows: dict[int, dict[str, Any]] = {}
    index = 0
    for batch in build.outputs.batches(input_digest):
        for row in batch:
            if index in wanted:
                rows[index] = row
            index += 1
    writer = build.outputs.writer(pair_schema(schema, spec.response))
    for pair in chosen:
        writer.write(pair_row(rows[pair.chosen], rows[pair.rejected], pair, spec))
    return writer


def pair_schema(schema: pa.Schema, response: str) -> pa.Schema:
    import pyarrow as pa

    text = schema.field(response).type
    conversation = (
        [(C.MESSAGES, schema.field(C.MESSAGES).type)] if C.MESSAGES in schema.names else []
    )
    return pa.schema(
        [
            (C.ID, pa.string()),
            (C.PARENT, pa.string()),
            (C.SYSTEM, pa.string()),
            (C.PROMPT, pa.string()),
            *conversation,
            ("chosen", text),
            ("rejected", text),
            ("chosen_score", pa.float64()),
            ("rejected_score", pa.float64()),
            ("margin", pa.float64()),
            ("chosen_id", pa.string()),
            ("rejected_id", pa.string()),
        ]
    )


def pair_row(
    chosen: dict[str, Any], rejected: dict[str, Any], pair: Pair, spec: Any
) -> dict[str, Any]:
    """One pair: the prompt is the chosen candidate's (candidates of one input share it).
    With one pair per input its id is the input's id, so a diff sees a changed pair as
    changed, not as removed and added."""
    parent = chosen[C.PARENT]
    pair_id = parent if spec.rejected == "worst" else f"{parent}|{rejected[C.ID]}"
    conversation = {C.MESSAGES: chosen[C.MESSAGES]} if C.MESSAGES in chosen else {}
    return {
        C.ID: pair_id,
        C.PARENT: parent,
        C.SYSTEM: chosen.get(C.SYSTEM),
        C.PROMPT: chosen.get(C.PROMPT),
        **conversation,
        "chosen": chosen.get(spec.response),
        "rejected": rejected.get(spec.response),
        "chosen_score": float(chosen[spec.score]),
        "rejected_score": float(rejected[spec.score]),
        "margin": pair.margin,
        "chosen_id": chosen[C.ID],
        "rejected_id": rejected[C.ID],
    }


class PairsKind(WholeInputKind):
    name = "pairs"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return pairs_recipe(node)

    def compute(
        self, build: Any, node: GraphNode, digests: list[str | None], stats: NodeStats
    ) -> Any:
        assert digests[0] is not None
        return run_pairs(build, node, digests[0], stats)
