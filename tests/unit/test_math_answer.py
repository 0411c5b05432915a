"""``check: math_answer``: answer extraction, number formats, tolerance, percent rule,
symbolic equivalence, and the load-time error when sympy is asked for but missing."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

import fdbuild.checks
from fdbuild.checks import get_check_class
from fdbuild.checks.math_answer import MathAnswerCheck, MathAnswerParams
from fdbuild.checks.math_parse import extract_answer, parse_number
from fdbuild.errors import ParamError


def check(**params: object) -> MathAnswerCheck:
    return MathAnswerCheck(MathAnswerParams.model_validate(params), Path("."))


# (reply, gold, reason): every format the check reads, both ways where it matters.
TABLE: list[tuple[str, str, str]] = [
    # extraction rules
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", "ok"),
    ("#### 72\nsome trailing chatter 5", "72", "ok"),  # #### wins over the last number
    ("So we get \\boxed{42}.", "42", "ok"),
    ("\\boxed{\\frac{3}{4}} is the share", "0.75", "ok"),  # nested braces
    ("The answer is 18 dollars.", "18", "ok"),
    ("Therefore, the final answer is 7. Then we check 9.", "7", "ok"),
    ("Answer: 56", "56", "ok"),
    ("**Answer:** $56", "56", "ok"),
    ("First 3 bags, then 5 more, so 8 in all", "8", "ok"),  # the last number
    ("The final answer is $\\boxed{3}$", "3", "ok"),
    # thousands separators
    ("#### 1,234", "1234", "ok"),
    ("#### 1 234", "1234", "ok"),
    ("The answer is 1,234,567.", "1234567", "ok"),
    ("\\boxed{1{,}234}", "1234", "ok"),
    ("#### 1234", "1,234", "ok"),  # a gold with separators
    # decimals
    ("#### 3.50", "3.5", "ok"),
    ("#### 12.0", "12", "ok"),
    ("#### .5", "0.5", "ok"),
    ("#### 2.75", "2.7", "wrong"),
    # fractions
    ("#### 3/4", "0.75", "ok"),
    ("\\boxed{\\dfrac{1}{2}}", "0.5", "ok"),
    ("\\boxed{\\tfrac{5}{2}}", "2.5", "ok"),
    ("\\boxed{\\frac34}", "3/4", "ok"),
    ("#### 1 1/2", "1.5", "ok"),  # a mixed number
    ("#### 2/3", "0.67", "wrong"),  # the default tolerance is 1e-6
    # percentages: % is a unit (GSM8K writes 50, not 0.5)
    ("The answer is 50%.", "50", "ok"),
    ("\\boxed{50\\%}", "50", "ok"),
    ("The answer is 50%.", "0.5", "wrong"),
    # negative numbers
    ("#### -6", "-6", "ok"),
    ("The temperature is \u22126 degrees, so the answer is \u22126.", "-6", "ok"),
    ("#### 6", "-6", "wrong"),
    ("\\boxed{-\\frac{1}{2}}", "-0.5", "ok"),
    # currency and units
    ("#### $1,200.50", "1200.5", "ok"),
    ("The answer is \\$18.", "18", "ok"),
    ("Answer: 12 apples", "12", "ok"),
    ("#### 3.5 km/h", "3.5", "ok"),
    ("#### 45 €", "45", "ok"),
    # verdicts that are not ok
    ("#### 71", "72", "wrong"),
    ("I do not know.", "72", "no_answer"),
    ("", "72", "no_answer"),
    ("#### 72", "", "unparsable_gold"),
    ("#### 72", "seventy-two", "unparsable_gold"),
    ("#### 72", "\\frac{\\sqrt{3}}{2}", "unparsable_gold"),  # not read as its last number 2
    # a GSM8K gold: the solution text, its answer on the #### line
    ("#### 72", "Natalia sold 48/2 = 24 clips in May.\n#### 72", "ok"),
    ("\\boxed{\\sqrt{2}}", "2", "wrong"),  # a box is read whole, not as its number 2
]


def test_the_table_covers_at_least_thirty_pairs() -> None:
    assert len(TABLE) >= 30
    assert {r for *_, r in TABLE} == {"ok", "wrong", "no_answer", "unparsable_gold"}


@pytest.mark.parametrize(("reply", "gold", "reason"), TABLE)
def test_answer_against_gold(reply: str, gold: str, reason: str) -> None:
    out = check().compare(reply, gold)
    assert out["reason"] == reason, out
    assert out["correct"] is (reason == "ok")


def test_outputs_name_what_was_read() -> None:
    out = check().evaluate({"answer": "So... \\boxed{1{,}234} apples", "gold": 1234})
    assert out == {
        "correct": True,
        "answer": "1{,}234",
        "gold": "1234",
        "reason": "ok",
        "extracted_by": "boxed",
    }
    gsm = check().evaluate({"answer": "#### 5", "gold": "3 + 2 = 5\n#### 5"})
    assert gsm["gold"] == "5" and gsm["extracted_by"] == "hash"
    assert check().evaluate({"answer": None, "gold": "1"})["reason"] == "no_answer"


def test_columns_are_params() -> None:
    c = check(answer="completion", gold="gold_answer")
    assert list(c.reads()) == ["completion", "gold_answer"]
    assert c.evaluate({"completion": "#### 9", "gold_answer": "9"})["correct"] is True


def test_tolerance_absolute_and_relative() -> None:
    assert check().compare("#### 0.3333333", "1/3")["reason"] == "ok"  # within 1e-6
    assert check().compare("#### 0.333", "1/3")["reason"] == "wrong"
    assert check(tolerance=0.001).compare("#### 0.333", "1/3")["reason"] == "ok"
    assert check(tolerance=0).compare("#### 1000.4", "1000")["reason"] == "wrong"
    assert check(tolerance=0, rel_tolerance=0.001).compare("#### 1000.4", "1000")["correct"]
    assert not check(tolerance=0, rel_tolerance=0.001).compare("#### 1.4", "1")["correct"]


def test_percent_either_accepts_the_fraction_too() -> None:
    either = check(percent="either")
    assert either.compare("The answer is 50%.", "0.5")["reason"] == "ok"
    assert either.compare("#### 0.5", "50%")["reason"] == "ok"
    assert either.compare("The answer is 50%.", "50")["reason"] == "ok"
    assert either.compare("The answer is 50%.", "5")["reason"] == "wrong"


@pytest.mark.parametrize(
    ("text", "value", "percent"),
    [
        ("1,234", Fraction(1234), False),
        ("1\u202f234", Fraction(1234), False),
        ("1\\,234.5", Fraction(2469, 2), False),
        ("-3/4", Fraction(-3, 4), False),
        ("\\frac{-3}{4}", Fraction(-3, 4), False),
        ("2\\frac{1}{2}", Fraction(5, 2), False),
        ("(-3)", Fraction(-3), False),
        ("+5", Fraction(5), False),
        ("-$5", Fraction(-5), False),
        ("$\\frac{3}{4}$", Fraction(3, 4), False),
        ("12.5\\%", Fraction(25, 2), True),
        ("1e3", Fraction(1000), False),
        ("\\text{42 dollars}", Fraction(42), False),
        ("5 eggs", Fraction(5), False),
    ],
)
def test_parse_number(text: str, value: Fraction, percent: bool) -> None:
    number = parse_number(text)
    assert number is not None and (number.value, number.percent) == (value, percent)


@pytest.mark.parametrize("text", ["x+1", "1,2,3", "1/0", "1e999999", "", "--5", "seventy"])
def test_parse_number_refuses(text: str) -> None:
    assert parse_number(text) is None


def test_extraction_rules_in_order() -> None:
    assert extract_answer("a 1\n#### 2\n\\boxed{3}") == ("2", "hash")
    assert extract_answer("\\boxed{3} the answer is 4") == ("3", "boxed")
    assert extract_answer("\\boxed{\\frac{1}{\\sqrt{2}}}") == ("\\frac{1}{\\sqrt{2}}", "boxed")
    assert extract_answer("the answer is 4\nAnswer: 5") == ("4", "answer_is")
    assert extract_answer("Answer: 5 then 6") == ("5 then 6", "answer_label")
    assert extract_answer("3 and 4.") == ("4", "last_number")
    assert extract_answer("\\boxed{unclosed 7") == ("7", "last_number")
    assert extract_answer("nothing here") is None


def test_registered_and_versioned() -> None:
    assert get_check_class("math_answer") is MathAnswerCheck
    assert MathAnswerCheck.version and MathAnswerCheck.outputs["correct"] == "bool"


# --------------------------------------------------------------------------- symbolic


def test_symbolic_equivalence() -> None:
    sym = check(symbolic=True)
    assert sym.compare("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\dfrac{\\sqrt 3}{2}")["reason"] == "ok"
    assert sym.compare("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}")["reason"] == "ok"
    assert sym.compare("\\boxed{x^2-1}", "(x-1)(x+1)")["reason"] == "ok"
    assert sym.compare("\\boxed{2^{10}}", "1024")["reason"] == "ok"
    assert sym.compare("\\boxed{x^2+1}", "(x-1)(x+1)")["reason"] == "wrong"
    assert sym.compare("\\boxed{2}", "\\frac{\\sqrt{3}}{2}")["reason"] == "wrong"
    # without symbolic, an expression is not a number: the numeric check cannot say
    assert check().compare("\\boxed{2^{10}}", "1024")["reason"] == "wrong"


@pytest.mark.parametrize(
    "hostile",
    [
        "eval(chr(95)+chr(95))",  # names other than variables and a few functions
        "x.__class__",
        "9^9^9",  # 9^387420489: refused, not computed
        "9^((9)^9)",
        "9^(x*0+9^9)",
        "2^{1000}",
        "x" * 300,
    ],
)
def test_symbolic_refuses_what_is_not_plain_arithmetic(hostile: str) -> None:
    out = check(symbolic=True).compare(f"\\boxed{{{hostile}}}", "1")
    assert out["reason"] == "wrong" and out["correct"] is False


def test_symbolic_without_sympy_is_a_load_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sympy", None)  # import sympy raises ImportError
    monkeypatch.delitem(sys.modules, "fdbuild.checks.math_symbolic", raising=False)
    monkeypatch.delattr(fdbuild.checks, "math_symbolic", raising=False)
    with pytest.raises(ParamError) as err:
        check(symbolic=True)
    assert err.value.param == "symbolic" and "fdbuild[math]" in str(err.value)
    assert check().compare("#### 1", "1")["correct"]  # the numeric check needs no sympy


@pytest.mark.timeout(60)  # a hang guard: each input below once took seconds to hours
@pytest.mark.parametrize(
    "reply",
    [
        "12 " + "a" * 10_000 + "#",  # a unit-like tail (was exponential backtracking)
        "\\boxed{" * 3000,  # unclosed boxes (was quadratic)
        "$" * 5000 + "1",  # math-mode wrappers (was cubic)
        "1 1/" * 3000,
        "the answer is " * 2000,
    ],
)
def test_pathological_replies_are_read_in_linear_time(reply: str) -> None:
    out = check().compare(reply, "1")
    assert out["reason"] in ("wrong", "no_answer", "ok")
