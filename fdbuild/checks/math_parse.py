"""Reading numbers the way math replies and gold answers write them (for ``math_answer``).

Two steps, kept apart so each can be tested on its own:

* ``extract_answer`` finds the final answer in a reply, by the first rule that matches:
  the last ``#### ...`` line (GSM8K), the last ``\\boxed{...}`` (nested braces), the
  last "the answer is ...", the last ``Answer: ...``, else the last number in the text.
* ``parse_number`` reads one answer as an exact ``Fraction``: integers with thousands
  separators (``1,234``, ``1 234``, ``1\\,234``, ``1{,}234``), decimals, ``3/4``,
  ``\\frac{3}{4}`` (also ``\\dfrac``, ``\\tfrac``, ``\\frac34``), mixed numbers
  (``1 1/2``), negatives (``-``, ``−``), a percent sign (kept as a flag), currency
  signs and trailing units (``$1,200``, ``12 apples``, ``3.5 km/h``) stripped.

Everything is pure Python with precompiled regexes: a reply is read in microseconds.
Exact fractions, not floats, so ``0.1 + 0.2``-style noise never decides a verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_MAX_EXPONENT = 100  # 1e100000 as an exact Fraction would take seconds and megabytes


@dataclass(frozen=True)
class Number:
    """A parsed answer: its exact value and whether it was written as a percentage."""

    value: Fraction
    percent: bool = False


# --------------------------------------------------------------------------- extraction

_HASH = re.compile(r"####[ \t]*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
_ANSWER_IS = re.compile(
    r"\b(?:the\s+)?(?:final\s+)?answer\s+(?:is|=|would\s+be|will\s+be)\s*:?\s*([^\n]*)", re.I
)
_ANSWER_LABEL = re.compile(r"(?:^|\n)[ \t*#]*(?:final\s+)?answer[ \t*]*:[ \t*]*([^\n]*)", re.I)

_SENTENCE_END = re.compile(r"\.(?:\s|$)")  # "is 42. Then ..." -> "42"; 3.5 stays whole
_SIGN = r"[-+\u2212]?"
_FRAC_CMD = r"\\[dt]?frac"
_LATEX_FRAC = (
    rf"{_FRAC_CMD}\s*\{{\s*{_SIGN}\s*[\d.,]+\s*\}}\s*\{{\s*{_SIGN}\s*[\d.,]+\s*\}}"
    rf"|{_FRAC_CMD}\s*\d\s*\d"
)
_INT_GROUPED = r"\d{1,3}(?:(?:,|\\,|\{,\}|[ \u00a0\u202f\u2009])\d{3})+(?![\d])"
_DECIMAL = r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
# One number as it appears in running text, for the "last number" rule.
_NUMBER_TOKEN = re.compile(
    rf"(?<![\w.])({_SIGN}\s*(?:\\\$|\$)?\s*(?:"
    rf"\d+\s+\d+\s*/\s*\d+(?![\d/])"  # mixed number 1 1/2
    rf"|(?:\d+\s*)?(?:{_LATEX_FRAC})"
    rf"|{_DECIMAL}\s*/\s*{_DECIMAL}"
    rf"|{_INT_GROUPED}(?:\.\d+)?"
    rf"|{_DECIMAL}"
    r")(?:\s*\\?%)?)"
)


def _boxed_contents(text: str) -> str | None:
    """The contents of the last ``\\boxed{...}`` whose braces balance, else None.
    One pass pairs every brace (a stack), so a reply of a thousand unclosed boxes is
    read in linear time."""
    starts = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not starts:
        return None
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, char in enumerate(text):
        if char == "{":
            stack.append(i)
        elif char == "}" and stack:
            closing[stack.pop()] = i
    for start in reversed(starts):
        if start in closing:
            return text[start + 1 : closing[start]]
    return None


def extract_answer(text: str) -> tuple[str, str] | None:
    """The final answer's text and the rule that found it (``hash``, ``boxed``,
    ``answer_is``, ``answer_label``, ``last_number``), or None when there is none."""
    if not text or not text.strip():
        return None
    hashes = [m.group(1).strip() for m in _HASH.finditer(text)]
    hashes = [h for h in hashes if h]
    if hashes:
        return hashes[-1], "hash"
    boxed = _boxed_contents(text)
    if boxed is not None and boxed.strip():
        return boxed.strip(), "boxed"
    for pattern, rule in ((_ANSWER_IS, "answer_is"), (_ANSWER_LABEL, "answer_label")):
        spans = [m.group(1).strip() for m in pattern.finditer(text)]
        spans = [s for s in spans if _NUMBER_TOKEN.search(s) or rule == "answer_label"]
        spans = [s for s in spans if s]
        if spans:
            inner = _boxed_contents(spans[-1])  # "The final answer is $\boxed{3}$"
            if inner is not None and inner.strip():
                return inner.strip(), rule
            sentence = _SENTENCE_END.split(spans[-1], maxsplit=1)[0].strip()
            return (sentence or spans[-1]), rule
    numbers = _NUMBER_TOKEN.findall(text)
    if numbers:
        return numbers[-1].strip(), "last_number"
    return None


# --------------------------------------------------------------------------- numbers

_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\;|\\:|\\quad|\\displaystyle|\\mathrm|\\text")
_CURRENCY = re.compile(r"^(?:\\\$|\$|€|£|¥|₹|USD|EUR|GBP|Rs\.?)\s*", re.I)
_WORD = r"[A-Za-z\u00b0\u00b5\u03bc€£¥₹][\w\u00b0/^²³.\-]*"
# Words are separated by whitespace, so a run of letters splits one way only: no
# backtracking blow-up on a long unit-like tail ("12 aaaa...#").
_TRAILING_WORDS = re.compile(
    rf"(?<=[\d}}%])(?![eE][-+]?\d+$)\s*{_WORD}(?:\s+{_WORD})*\s*$|\s*[.,;:!]+$"
)
_GROUP_SEP = re.compile(r"(?<=\d)(?:,|\\,|\{,\}|[ \u00a0\u202f\u2009])(?=\d{3}(?!\d))")
_FULL_INT_GROUPED = re.compile(rf"^{_INT_GROUPED}(?:\.\d+)?$")
_FULL_DECIMAL = re.compile(rf"^{_DECIMAL}$")
_FULL_FRACTION = re.compile(rf"^({_DECIMAL})\s*/\s*({_DECIMAL})$")
_FULL_LATEX_FRAC = re.compile(
    rf"^{_FRAC_CMD}\s*(?:\{{\s*([-+]?\s*[\d.,]+)\s*\}}\s*\{{\s*([-+]?\s*[\d.,]+)\s*\}}|(\d)\s*(\d))$"
)
_MIXED = re.compile(rf"^(\d+)\s+(\d+\s*/\s*\d+|{_FRAC_CMD}.*)$|^(\d+)\s*({_FRAC_CMD}.*)$")


def _decimal(text: str) -> Fraction | None:
    text = text.strip()
    if not _FULL_DECIMAL.match(text):
        return None
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        return None
    return Fraction(mantissa) * (Fraction(10) ** int(exponent or 0))


def _unsigned(text: str) -> Fraction | None:
    """The value of an unsigned number with no currency, unit or percent sign."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if _FULL_INT_GROUPED.match(text):
        return Fraction(_GROUP_SEP.sub("", text))
    value = _decimal(text)
    if value is not None:
        return value
    match = _FULL_FRACTION.match(text)
    if match:
        num, den = _decimal(match.group(1)), _decimal(match.group(2))
        return None if num is None or not den else num / den
    match = _FULL_LATEX_FRAC.match(text)
    if match:
        num_text, den_text = (
            (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
        )
        num, den = _signed(num_text), _signed(den_text)
        return None if num is None or not den else num / den
    match = _MIXED.match(text)
    if match:
        whole, part = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
        frac = _unsigned(part)
        return None if frac is None or frac >= 1 else Fraction(int(whole)) + frac
    return None


def _signed(text: str) -> Fraction | None:
    text = text.strip().replace("\u2212", "-")
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    negative = text.startswith("-")
    text = text[1:].strip() if text[:1] in ("+", "-") else text
    if text[:1] in ("+", "-"):
        return None
    value = _unsigned(text)
    return None if value is None else (-value if negative else value)


def normalize(text: str) -> str:
    """The answer without math-mode wrappers, LaTeX spacing, ``\\text{}`` and a final
    full stop: what ``parse_number`` and the symbolic comparison read."""
    text = text.strip()
    for _ in range(3):  # string tests, not a regex: "$$$...1" must not backtrack
        if len(text) > 1 and text.startswith("$") and text.endswith("$"):
            text = text.strip("$").strip()
        elif text[:2] in ("\\(", "\\[") and text[-2:] in ("\\)", "\\]"):
            text = text[2:-2].strip()
        else:
            break
    text = re.sub(r"\\text\{([^{}]*)\}", r" \1", text)
    text = _LATEX_NOISE.sub("", text)
    text = text.replace("\\%", "%").replace("\u2212", "-").replace("\\$", "$")
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip()


def parse_number(text: str | None) -> Number | None:
    """``text`` as one number, or None when it is not one (see the module docstring)."""
    if text is None:
        return None
    body = normalize(text)
    if not body:
        return None
    sign = ""
    if body[0] in "+-":
        sign, body = body[0], body[1:].strip()
    body = _CURRENCY.sub("", body)
    if body[:1] in ("+", "-") and not sign:
        sign, body = body[0], body[1:].strip()
    body = _TRAILING_WORDS.sub("", body).strip()
    percent = body.endswith("%")
    if percent:
        body = body[:-1].strip()
    body = _TRAILING_WORDS.sub("", body).strip()
    value = _signed(sign + body) if body else None
    return None if value is None else Number(value, percent)


def first_number(text: str) -> Number | None:
    """The first number inside an answer span that is not one number as a whole
    ("42 apples in total"): the span's own rule already chose the sentence."""
    for token in _NUMBER_TOKEN.findall(text):
        number = parse_number(token)
        if number is not None:
            return number
    return None


def read_answer(text: str, rule: str) -> Number | None:
    """An extracted answer span as a number. A sentence ("the answer is 42 because ...")
    may hold its number anywhere; a ``####`` line or a box is read as a whole, so
    ``\\boxed{\\sqrt{3}}`` is not the number 3."""
    number = parse_number(text)
    if number is None and rule in ("answer_is", "answer_label"):
        number = first_number(normalize(text))
    return number
