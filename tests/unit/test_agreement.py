"""fdbuild/agreement.py against figures worked out by hand (and scipy where installed)."""

from __future__ import annotations

import math

import pytest

from fdbuild.agreement import (
    average_ranks,
    pass_rate,
    pearson,
    score_agreement,
    spearman,
    verdict_agreement,
)

# Teacher and student verdicts on 8 rows; worked out by hand:
# both pass rows 0,1,2; a only 3,4; b only 5; neither 6,7 -> table 3/2/1/2, n 8
# pa = 5/8, pb = 4/8; po = 5/8; pe = 5/8*4/8 + 3/8*4/8 = 1/2; kappa = (5/8-1/2)/(1/2) = 1/4
A = [True, True, True, True, True, False, False, False]
B = [True, True, True, False, False, True, False, False]

# Scores of 5 rows (a tie on each side); by hand:
# diffs 1,0,2,1,0 -> MAE 4/5; squares 1,0,4,1,0 -> RMSE sqrt(6/5)
# a mean 3, b mean 3.2... see each assertion
SA = [1.0, 2.0, 2.0, 4.0, 6.0]
SB = [2.0, 2.0, 4.0, 3.0, 6.0]


def test_verdicts_by_hand() -> None:
    fig = verdict_agreement(A, B)
    assert fig["n"] == 8
    assert (fig["both_pass"], fig["a_only"], fig["b_only"], fig["both_fail"]) == (3, 2, 1, 2)
    assert fig["flips"] == 3
    assert fig["pass_rate_a"] == 0.625
    assert fig["pass_rate_b"] == 0.5
    assert fig["agreement"] == 0.625
    assert fig["kappa"] == 0.25


def test_missing_verdicts_are_left_out_of_n() -> None:
    fig = verdict_agreement([True, None, False], [True, True, None])
    assert fig["n"] == 1
    assert fig["agreement"] == 1.0
    assert fig["kappa"] is None  # one row: chance agreement is 1, kappa undefined


def test_perfect_and_opposite_kappa() -> None:
    assert verdict_agreement([True, False], [True, False])["kappa"] == 1.0
    assert verdict_agreement([True, False], [False, True])["kappa"] == -1.0


def test_no_pairs_gives_none_everywhere() -> None:
    fig = verdict_agreement([], [])
    assert fig["n"] == 0
    assert fig["pass_rate_a"] is fig["agreement"] is fig["kappa"] is None
    assert score_agreement([None], [1.0])["mae"] is None


def test_pass_rate_counts_only_present_values() -> None:
    assert pass_rate([True, None, False, True]) == (pytest.approx(2 / 3, abs=1e-6), 3)
    assert pass_rate([None]) == (None, 0)


def test_scores_by_hand() -> None:
    fig = score_agreement(SA, SB)
    assert fig["n"] == 5
    assert fig["mean_a"] == 3.0
    assert fig["mean_b"] == 3.4
    assert fig["mae"] == 0.8
    assert fig["rmse"] == pytest.approx(math.sqrt(6 / 5), abs=1e-6)
    # deviations a: -2,-1,-1,1,3  b: -1.4,-1.4,.6,-.4,2.6
    # sum ab = 2.8+1.4-.6-.4+7.8 = 11; sum aa = 16; sum bb = 1.96*2+.36+.16+6.76 = 11.2
    assert fig["pearson"] == pytest.approx(11 / math.sqrt(16 * 11.2), abs=1e-6)
    # average ranks a: 1, 2.5, 2.5, 4, 5   b: 1.5, 1.5, 4, 3, 5
    # deviations a: -2,-.5,-.5,1,2  b: -1.5,-1.5,1,0,2 -> ab 3+.75-.5+0+4 = 7.25
    # aa 4+.25+.25+1+4 = 9.5; bb 2.25+2.25+1+0+4 = 9.5 -> rho 7.25/9.5
    assert fig["spearman"] == pytest.approx(7.25 / 9.5, abs=1e-6)


def test_average_ranks_share_ties() -> None:
    assert average_ranks([3.0, 1.0, 3.0, 2.0, 3.0]) == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_zero_variance_is_undefined_not_zero() -> None:
    assert pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert spearman([5.0, 5.0], [1.0, 2.0]) is None
    assert pearson([1.0], [2.0]) is None
    fig = score_agreement([0.5, 0.5], [0.5, 0.5])
    assert fig["mae"] == 0.0 and fig["pearson"] is None


def test_unequal_sides_are_an_error() -> None:
    with pytest.raises(ValueError, match="equal"):
        verdict_agreement([True], [True, False])


def test_against_scipy() -> None:
    """The one cross-check that needs scipy (not a dependency): skipped without it."""
    stats = pytest.importorskip("scipy.stats")
    a = [0.9, 0.8, 0.7, 0.6, 0.2, 0.9, 0.4, 0.4, 0.1]
    b = [0.8, 0.8, 0.3, 0.2, 0.1, 0.7, 0.5, 0.4, 0.4]
    fig = score_agreement(a, b)
    assert fig["pearson"] == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-6)
    assert fig["spearman"] == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-6)
