"""sample: and where: as pure functions (fdbuild/sampling.py)."""

from __future__ import annotations

import pytest

from fdbuild.sampling import compile_where, in_fraction, score, smallest_n


def test_score_is_a_fixed_function_of_seed_and_id() -> None:
    assert score(3, "t001") == score(3, "t001")
    assert score(3, "t001") != score(4, "t001")
    assert 0 <= score(3, "t001") < 1
    # pinned: a change to the hash would silently move every user's sample
    assert score(3, "t001") == pytest.approx(0.5474241136083821, abs=1e-15)
    assert score(0, "a") == pytest.approx(0.7609849895075749, abs=1e-15)


def test_fraction_membership_ignores_the_other_rows() -> None:
    ids = [f"r{i}" for i in range(2000)]
    kept = {r for r in ids if in_fraction(3, 0.1, r)}
    grown = {r for r in ids + [f"new{i}" for i in range(500)] if in_fraction(3, 0.1, r)}
    assert kept <= grown and kept == {r for r in grown if r.startswith("r")}
    assert 150 < len(kept) < 250  # about a tenth
    assert all(in_fraction(3, 1.0, r) for r in ids)


def test_n_is_exact_deterministic_and_order_free() -> None:
    ids = [f"r{i}" for i in range(500)]
    first = smallest_n(3, 10, ids)
    assert len(first) == 10
    assert smallest_n(3, 10, list(reversed(ids))) == first
    assert smallest_n(4, 10, ids) != first
    assert smallest_n(3, 10, ids[:5]) == set(ids[:5])  # fewer rows than n: all of them
    assert first == {r for r in sorted(ids, key=lambda r: score(3, r))[:10]}


def test_where_rules_mirror_keep() -> None:
    rows = [
        {"lang": "en", "score": 0.9, "level": "easy"},
        {"lang": "fr", "score": 0.2, "level": "hard"},
        {"lang": "en", "score": None, "level": "medium"},
    ]
    assert [compile_where({"lang": "en"})(r) for r in rows] == [True, False, True]
    assert [compile_where({"score": {"min": 0.5}})(r) for r in rows] == [True, False, False]
    both = compile_where({"lang": "en", "level": {"in": ["easy", "hard"]}})
    assert [both(r) for r in rows] == [True, False, False]
    assert [compile_where({"level": {"not": "hard"}})(r) for r in rows] == [True, False, True]


@pytest.mark.parametrize(
    ("rules", "needle"),
    [
        ({"score": {"over": 1}}, "where rule for 'score' has unknown condition(s) over"),
        ({"score": {"min": "high"}}, "'min' takes a number"),
        ({"level": {"in": "easy"}}, "'in' takes a list"),
    ],
)
def test_bad_where_rules_name_the_column(rules: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        compile_where(rules)
    assert needle in str(info.value)
