"""The decision rules of ``vote`` and ``pairs`` nodes, one input's candidates at a time."""

from __future__ import annotations

from fdbuild.nodes import pairs, vote
from fdbuild.nodes.pairs import Scored
from fdbuild.nodes.vote import Candidate


def cand(i: int, group: str | None, *, votes: bool = True, score: float | None = None) -> Candidate:
    return Candidate(i, votes, group, score)


def test_agreement_picks_the_largest_group_and_counts_non_voters_in_the_total() -> None:
    cands = [cand(0, "a"), cand(1, "b"), cand(2, "b"), cand(3, None), cand(4, "b", votes=False)]
    pick, tie = vote.decide(cands, by_score=False)
    assert pick is not None and (pick.index, pick.size, pick.total, tie) == (1, 2, 5, False)
    assert pick.share == 0.4


def test_agreement_tie_goes_to_the_group_seen_first_and_is_reported() -> None:
    pick, tie = vote.decide(
        [cand(0, "x"), cand(1, "y"), cand(2, "y"), cand(3, "x")], by_score=False
    )
    assert pick is not None and pick.index == 0 and pick.size == 2 and tie


def test_no_voters_no_pick() -> None:
    assert vote.decide([cand(0, None), cand(1, "a", votes=False)], by_score=False) == (None, False)


def test_best_score_breaks_equal_scores_by_agreement() -> None:
    cands = [
        cand(0, "a", score=0.9),
        cand(1, "b", score=0.9),
        cand(2, "b", score=0.5),
        cand(3, "c", score=None),
    ]
    pick, tie = vote.decide(cands, by_score=True)
    assert pick is not None and (pick.index, pick.size, pick.total) == (1, 2, 4) and tie
    pick, tie = vote.decide([cand(0, "a", score=0.2), cand(1, "a", score=0.2)], by_score=True)
    assert pick is not None and pick.index == 0 and not tie  # same result: no real tie


def test_group_keys_are_type_faithful() -> None:
    assert vote.group_key(1) != vote.group_key("1")
    assert vote.group_key(None) is None
    assert vote.group_key([1, "a"]) == vote.group_key([1, "a"])


def s(i: int, score: float, passed: bool = True) -> Scored:
    return Scored(i, score, passed)


def test_pairs_best_passing_against_worst() -> None:
    got, outcome = pairs.decide(
        [s(0, 0.2), s(1, 0.9), s(2, 0.95, passed=False), s(3, 0.1)], 0.3, False
    )
    assert outcome == "pair" and [(p.chosen, p.rejected, p.margin) for p in got] == [(1, 3, 0.8)]


def test_pairs_skips_are_classified() -> None:
    assert pairs.decide([s(0, 0.9)], 0.0, False)[1] == "single"
    assert pairs.decide([], 0.0, False)[1] == "single"
    assert pairs.decide([s(0, 0.9, False), s(1, 0.1, False)], 0.0, False)[1] == "no_chosen"
    assert pairs.decide([s(0, 0.8), s(1, 0.8)], 0.0, False)[1] == "ties"
    assert pairs.decide([s(0, 0.8), s(1, 0.7)], 0.3, False)[1] == "below_margin"


def test_margin_is_compared_as_written_not_in_binary_floating_point() -> None:
    assert 0.7 - 0.4 < 0.3  # the trap
    got, outcome = pairs.decide([s(0, 0.7), s(1, 0.4)], 0.3, False)
    assert outcome == "pair" and got[0].margin == 0.3


def test_pairs_all_rejected_gives_one_pair_per_worse_candidate() -> None:
    got, outcome = pairs.decide([s(0, 0.5), s(1, 0.9), s(2, 0.1), s(3, 0.85)], 0.3, True)
    assert outcome == "pair"
    assert [(p.chosen, p.rejected) for p in got] == [(1, 2), (1, 0)]
