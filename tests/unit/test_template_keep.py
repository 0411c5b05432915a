"""Templates render plain columns only; keep rules."""

from __future__ import annotations

import pytest

from fdbuild.checks.keep import compile_keep
from fdbuild.spec.template import TemplateSyntaxError, parse_template


def test_render_plain_columns_and_escapes() -> None:
    tpl = parse_template("Q: {question} {{literal}} {n}")
    assert tpl.columns == ["question", "n"]
    assert tpl.render({"question": "why?", "n": 3}) == "Q: why? {literal} 3"
    assert parse_template("{x}").render({"x": None}) == ""
    assert parse_template("{x}").render({"x": {"b": 1, "a": [1]}}) == '{"a": [1], "b": 1}'


@pytest.mark.parametrize(
    "bad", ["{x.__class__}", "{x[0]}", "{x!r}", "{x:>10}", "{}", "{0}", "{unclosed"]
)
def test_refused(bad: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse_template(bad)


def test_keep_rules() -> None:
    keep = compile_keep({"score": {"min": 0.5, "max": 0.9}, "ok": True})
    assert keep({"score": 0.5, "ok": True})
    assert not keep({"score": 0.95, "ok": True})
    assert not keep({"score": None, "ok": True})
    assert not keep({"score": 0.6, "ok": False})
    assert compile_keep({"r": {"in": ["ok", "too_long"]}})({"r": "too_long"})
    assert compile_keep({"r": {"not": "bad"}})({"r": "fine"})
    assert compile_keep({})({})


@pytest.mark.parametrize(
    "rule", [{"s": {"minimum": 1}}, {"s": {"min": "x"}}, {"s": {"in": "ok"}}, {"s": {}}]
)
def test_keep_rule_errors(rule: dict) -> None:
    with pytest.raises(ValueError):
        compile_keep(rule)
