"""Symbolic equivalence for ``math_answer`` (``symbolic: true``), with sympy.

Imported only when a gate asks for it: sympy is the optional ``math`` extra, and this
module's import fails without it (``math_answer`` turns that into a load-time error).

sympy's ``parse_expr`` evaluates Python, and the text comes from a teacher, so nothing
reaches it unless every token is a number, an operator, a parenthesis, a single
lower-case letter (a variable) or one of a few function names; exponents are small
literals (checked on the unevaluated tree) and the text is short, so no answer can run code or compute for minutes.
A few LaTeX forms are rewritten first (``\\frac{a}{b}``, ``\\sqrt{x}``, ``\\cdot``,
``\\times``, ``\\pi``, braces as parentheses).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

_MAX_CHARS = 200
_FUNCTIONS = frozenset({"sqrt", "pi", "sin", "cos", "tan", "log", "ln", "exp"})
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?|\.\d+)|([a-z]+)|(\*\*|[-+*/^(),]))")
_MAX_POWER = 100  # the largest literal exponent; (x+1)^100 simplifies in milliseconds
_TRANSFORMS = (*standard_transformations, implicit_multiplication_application, convert_xor)
_LATEX = [
    (re.compile(r"\\[dt]?frac\s*\{"), "frac{"),
    (re.compile(r"\\(sqrt|sin|cos|tan|log|ln|exp|pi)\b"), r"\1"),
    (re.compile(r"\\(?:cdot|times)"), "*"),
    (re.compile(r"\\div"), "/"),
]


_FRAC = re.compile(r"frac\{([^{}]*)\}\{([^{}]*)\}")
_SQRT = re.compile(r"sqrt\s*\{([^{}]*)\}")


def _from_latex(text: str) -> str:
    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    # frac{a}{b} -> ((a)/(b)) and sqrt{a} -> sqrt(a), innermost first
    for _ in range(10):
        text, n = _FRAC.subn(r"((\1)/(\2))", text)
        text, m = _SQRT.subn(r"sqrt(\1)", text)
        if not n + m:
            break
    return text.replace("{", "(").replace("}", ")")


def safe_expression(text: str) -> str | None:
    """``text`` as a sympy-parsable string made of allowed tokens only, or None."""
    text = _from_latex(text.strip())
    if not text or len(text) > _MAX_CHARS:
        return None
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return None if text[pos:].strip() else text
        word = match.group(2)
        if word is not None and len(word) > 1 and word not in _FUNCTIONS:
            return None
        pos = match.end()
    return text


@lru_cache(maxsize=4096)
def _expr(text: str) -> Any:
    safe = safe_expression(text)
    if safe is None:
        return None
    try:
        tree = parse_expr(safe, transformations=_TRANSFORMS, evaluate=False)
        if not _small_powers(tree):
            return None
        return parse_expr(safe, transformations=_TRANSFORMS, evaluate=True)
    except Exception:  # sympy raises many kinds for malformed input
        return None


def _small_powers(tree: Any) -> bool:
    """Whether every power in the unevaluated tree is cheap to evaluate (``9^9^9`` is
    9^387420489, which would compute for minutes)."""
    return all(
        _simple_exponent(node.exp)
        for node in sympy.preorder_traversal(tree)
        if isinstance(node, sympy.Pow)
    )


def _simple_exponent(exponent: Any) -> bool:
    """A number of at most ``_MAX_POWER``, a variable, or a sum or product of those that
    holds a variable (``n+1``, ``2x``): nothing whose value can be astronomically large."""
    if exponent.is_Number:
        return bool(abs(exponent) <= _MAX_POWER)
    if exponent.is_Symbol:
        return True
    if isinstance(exponent, (sympy.Add, sympy.Mul)):
        parts = exponent.args
        small = all(p.is_Symbol or (p.is_Number and abs(p) <= _MAX_POWER) for p in parts)
        return small and any(p.is_Symbol for p in parts)
    return False


def parses(text: str) -> bool:
    """Whether ``text`` is an expression this module can compare."""
    return _expr(text) is not None


def equivalent(answer: str, gold: str) -> bool:
    """Whether two expressions are mathematically equal (``sympy.simplify`` of their
    difference is 0); False when either cannot be read."""
    a, g = _expr(answer), _expr(gold)
    if a is None or g is None:
        return False
    try:
        return bool(sympy.simplify(a - g) == 0)
    except Exception:
        return False
