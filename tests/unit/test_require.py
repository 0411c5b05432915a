"""fdbuild/require.py: bars against a run record's figures, and how a result reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fdbuild.require import describe, evaluate, node_figures
from fdbuild.spec.model import Require

RECORD = {
    "nodes": {
        "checked": {"kind": "gate", "output": {"rows": 40}, "stats": {"rows_in": 40}},
        "kept": {"kind": "select", "output": {"rows": 21}, "stats": {"rows_in": 40}},
        "cmp": {
            "kind": "compare",
            "output": {"rows": 10},
            "stats": {
                "compare": {
                    "joined": 10,
                    "only_a": 0,
                    "gates": {"checked": {"kappa": 0.45, "n": 10}},
                    "scores": {"score": {"pearson": None, "n": 10}},
                }
            },
        },
    },
    "reports": {"quality": {"checked": {"gold_match_rate": 0.21, "pass_rate": 0.5}}},
}


def bar(**kw) -> Require:
    return Require(**kw)


def test_figures_of_each_kind() -> None:
    assert node_figures(RECORD, "kept")["rows"] == 21
    assert node_figures(RECORD, "checked")["gold_match_rate"] == 0.21
    figs = node_figures(RECORD, "cmp")
    assert figs["joined"] == 10 and figs["checked.kappa"] == 0.45 and figs["score.n"] == 10


def test_a_miss_says_by_how_much() -> None:
    (result,) = evaluate(RECORD, [bar(node="checked", figure="gold_match_rate", min=0.3)])
    assert result == {
        "node": "checked",
        "figure": "gold_match_rate",
        "op": ">=",
        "bar": 0.3,
        "value": 0.21,
        "ok": False,
        "by": -0.09,
    }
    assert describe(result) == "checked gold_match_rate 0.21 < 0.30 (missed by 0.09)"


def test_a_pass_and_a_max_bar() -> None:
    results = evaluate(
        RECORD,
        [
            bar(node="kept", figure="rows", min=20),
            bar(node="cmp", figure="checked.kappa", min=0.4, max=0.5),
            bar(node="cmp", figure="only_a", max=0),
        ],
    )
    assert [r["ok"] for r in results] == [True, True, True, True]
    assert describe(results[0]) == "kept rows 21 >= 20 (ok)"
    assert [r["op"] for r in results[1:3]] == [">=", "<="]


def test_a_max_miss() -> None:
    (result,) = evaluate(RECORD, [bar(node="kept", figure="rows", max=20)])
    assert not result["ok"] and result["by"] == -1
    assert describe(result) == "kept rows 21 > 20 (missed by 1)"


def test_an_undefined_figure_misses() -> None:
    (result,) = evaluate(RECORD, [bar(node="cmp", figure="score.pearson", min=0.5)])
    assert result["ok"] is False and result["value"] is None and result["by"] is None
    assert "not measured" in describe(result)


def test_a_bar_needs_a_bound() -> None:
    with pytest.raises(ValidationError, match="needs 'min' or 'max'"):
        Require(node="kept", figure="rows")
