"""Extracting the SQL query from a teacher's reply (``parse: sql``).

Teachers wrap SQL in thinking, code fences, ``SQL:`` labels and prose. ``extract_sql``
returns the first SQL statement, without its trailing ``;``, or ``""`` when the reply
holds none (so the rules gate reports ``empty_output`` instead of a parse failure).

It follows FastDistill's ``CleanSqlOutput`` (think tags, fences, ``SQL:`` prefixes,
prose before and after, first statement only) and fixes its known failures:

* fences with any SQL info string (```` ```sqlite ````, ```` ```SQL ````, one-line fences);
* an unclosed ``<think>`` drops the unfinished thinking (see ``reasoning.py``);
* prose words such as "with", "select" or "update" no longer start the query: each
  candidate start must parse (sqlglot) as a statement, and candidates at a line start
  or in upper case are tried before inline lower-case ones;
* ``;``, ``` and stop markers such as ``notes:`` inside string literals or comments do
  not end the statement (a small lexer tracks quotes and comments);
* trailing prose ("This returns ...") is cut, but only where the cut-off tail reads as
  prose, so a truncated query is never silently shortened into a different valid one;
* DML/DDL (``DROP TABLE``, ``DELETE``) is extracted as written, so the execution gate
  reports ``not_read_only`` rather than the reply looking empty.

When no candidate parses, the first likely candidate is returned as written, so broken
SQL reaches the execution gate and is reported as a ``syntax_error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import sqlglot
from sqlglot import exp

from fdbuild.errors import SpecError
from fdbuild.parsers.base import Parser
from fdbuild.parsers.reasoning import strip_reasoning

_KEYWORD = re.compile(
    r"\b(?P<kw>select|with|values|insert|replace|update|delete|create|drop|alter|pragma|attach)\b",
    re.I,
)
_KEYWORD_FOLLOW = {
    "values": re.compile(r"\s*\("),
    "insert": re.compile(r"\s+(?:or\s+\w+\s+)?into\b", re.I),
    "replace": re.compile(r"\s+into\b", re.I),
    "delete": re.compile(r"\s+from\b", re.I),
    "create": re.compile(r"\s+(?:temp|temporary|unique|table|index|view|trigger|virtual)\b", re.I),
    "drop": re.compile(r"\s+(?:table|index|view|trigger)\b", re.I),
    "alter": re.compile(r"\s+table\b", re.I),
}
# What may precede a statement on its line: markdown quote/bullet marks, a label such as
# "SQL:", "**Query:**" or "Answer:".
_LINE_PREFIX = re.compile(r"[ \t>*_-]*(?:[A-Za-z][\w ]{0,30}[:：][ \t*_]*)?")
_STOP_LINE = re.compile(
    r"[ \t>*_#-]*(?:explanation|reasoning|analysis|answer|final(?: answer)?|notes?|output|"
    r"result|this query|the query)\b[ \t*_]*[:：]",
    re.I,
)
_MARKDOWN_LINE = re.compile(r"[ \t]*(?:[-*+][ \t]|#|\d+[.)][ \t]|\*\*)")
_SENTENCE_LINE = re.compile(r"[ \t]*(?P<first>[A-Z][a-z']*)(?:[ \t]+\S+){2,}")
_SQL_WORDS = frozenset(
    """select with values from where group order by having limit offset join inner left
    right full outer cross natural on using as asc desc union all intersect except case
    when then else end set into distinct exists null not and or in is like glob between
    collate escape over partition window filter returning nulls first last recursive""".split()
)
_PROSE_STARTERS = frozenset("which that this these it returns will gives lists shows here".split())
_STATEMENTS = (
    exp.Query,
    exp.Values,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Pragma,
    exp.Attach,
)
_MAX_CUTS = 48


def extract_sql(text: str | None, dialect: str = "sqlite") -> str:
    """The first SQL statement in a teacher reply, or ``""`` when there is none."""
    if not text or not text.strip():
        return ""
    body = strip_reasoning(text)
    for labelled, block in _fenced_blocks(body):
        sql = _extract_from(block, dialect, labelled)
        if sql:
            return sql
    for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", body):
        if _KEYWORD.match(span.strip()) and _is_statement(span.strip(), dialect, False):
            return _finish(span)
    return _extract_from(body, dialect, labelled=False)


class SqlParser(Parser):
    """``parse: sql``: adds ``sql``; a reply without SQL gives ``""``, never a failure."""

    name = "sql"
    version = "1"
    outputs = {"sql": "string"}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - {"dialect"})
        if unknown:
            raise SpecError(f"parse 'sql': unknown option(s) {unknown}; known: ['dialect']")
        self.dialect = str(self.options.get("dialect", "sqlite"))

    def parse(self, text: str) -> dict[str, Any]:
        return {"sql": extract_sql(text, self.dialect)}


def _fenced_blocks(text: str) -> Iterator[tuple[bool, str]]:
    """(labelled SQL, body) of each code fence whose info string is empty or names SQL.

    An unclosed fence runs to the end of the text (the reply was cut off); a one-line
    fence (```` ```SELECT 1``` ```` or ```` ```sql SELECT 1``` ````) may start with its label.
    """
    pos = text.find("```")
    while pos != -1:
        line_end = text.find("\n", pos + 3)
        close = text.find("```", pos + 3)
        if close != -1 and (line_end == -1 or close < line_end):
            end = close
            info, body = _split_label(text[pos + 3 : close])
        elif line_end == -1:
            return
        else:
            info = text[pos + 3 : line_end].strip().lower()
            end = text.find("```", line_end)
            end = len(text) if end == -1 else end
            body = text[line_end + 1 : end]
        label = info.split()[0] if info else ""
        if not label or "sql" in label or label == "query":
            yield bool(label), body
        pos = text.find("```", end + 3) if end < len(text) else -1


def _split_label(line: str) -> tuple[str, str]:
    """A one-line fence's (label, body): ``sql SELECT 1`` has the label ``sql``."""
    word = re.match(r"\s*([\w+-]+)(?:\s+|$)", line)
    if word and "sql" in word.group(1).lower() and not _KEYWORD.fullmatch(word.group(1)):
        return word.group(1).lower(), line[word.end() :]
    return "", line


def _extract_from(text: str, dialect: str, labelled: bool) -> str:
    """The first candidate start (best tier first) whose statement parses, else a guess:
    the first likely start, or, in a fence labelled SQL, the fence's first statement."""
    starts = sorted(_candidate_starts(text))
    for tier, pos in starts:
        sql = _longest_statement(_region(text, pos), dialect, need_from=tier == 2)
        if sql:
            return sql
    likely = [pos for tier, pos in starts if tier < 2]
    if likely:
        return _finish(_region(text, likely[0]))
    if labelled:
        return _finish(_region(text, len(text) - len(text.lstrip())))
    return ""


def _candidate_starts(text: str) -> Iterator[tuple[int, int]]:
    """(tier, position) of every keyword that could open a statement.

    Quotes are not tracked before a candidate: prose apostrophes ("Here's") would make
    everything after them look like a string literal.

    Tier 0: at a line start (after an optional label) and not Title-case ("Select the").
    Tier 1: upper case anywhere. Tier 2: anything else (must then have a FROM clause).
    """
    for m in _KEYWORD.finditer(text):
        kw = m.group("kw")
        follow = _KEYWORD_FOLLOW.get(kw.lower())
        if follow and not follow.match(text, m.end()):
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        titled = kw[0].isupper() and not kw.isupper()
        if not titled and _LINE_PREFIX.fullmatch(text, line_start, m.start()):
            yield 0, m.start()
        elif kw.isupper():
            yield 1, m.start()
        else:
            yield 2, m.start()


def _region(text: str, start: int) -> str:
    """Text from ``start`` up to the end of the statement or the start of what follows.

    Ends at the first ``;``, code fence or ``</`` outside literals, at a stop-marker line
    ("Explanation:"), or at a prose paragraph after a blank line.
    """
    code = _code_mask(text[start:])
    for offset, is_code in enumerate(code):
        i = start + offset
        if not is_code:
            continue
        ch = text[i]
        if ch == ";" or text.startswith("```", i) or text.startswith("</", i):
            return text[start:i]
        if ch == "\n" and _ends_statement(text, i + 1):
            return text[start:i]
    return text[start:]


def _ends_statement(text: str, line_start: int) -> bool:
    """Whether the line at ``line_start`` is no longer SQL (a stop marker or prose)."""
    line_end = text.find("\n", line_start)
    line = text[line_start : len(text) if line_end == -1 else line_end]
    if _STOP_LINE.match(line):
        return True
    previous = text[text.rfind("\n", 0, max(line_start - 1, 0)) + 1 : line_start].strip()
    if previous:
        return False
    if _MARKDOWN_LINE.match(line):
        return True
    sentence = _SENTENCE_LINE.match(line)
    return sentence is not None and sentence.group("first").lower() not in _SQL_WORDS


def _longest_statement(region: str, dialect: str, need_from: bool) -> str:
    """The longest prefix of ``region`` that parses as one statement, cut only before a
    tail that reads as prose; ``""`` when there is none."""
    region = _finish(region)
    ends = [len(region)] + [m.start() for m in re.finditer(r"\s+", region)][::-1]
    tries = 0
    for end in ends:
        if end < len(region) and not _is_prose_tail(region[end:]):
            continue
        if end < len(region) and region[:end].split()[-1].lower() in _PROSE_STARTERS:
            continue  # the prose starts earlier ("FROM b which returns a")
        tries += 1
        if tries > _MAX_CUTS:
            break
        sql = region[:end].rstrip()
        for option in (sql, sql[:-1].rstrip() if sql.endswith(".") else None):
            if option and _is_statement(option, dialect, need_from):
                return option
    return ""


def _is_prose_tail(tail: str) -> bool:
    """A tail that starts like a sentence ("This returns...", "which lists ...") rather
    than like SQL (a keyword, an identifier, ``COUNT(``, ``T1.name``)."""
    word = re.match(r"[\s\"'(*]*([A-Za-z]+)(?![\w(.])", tail)
    if not word or word.group(1).lower() in _SQL_WORDS:
        return False
    first = word.group(1)
    return (first.istitle() and len(first) > 1) or first.lower() in _PROSE_STARTERS


def _is_statement(sql: str, dialect: str, need_from: bool) -> bool:
    """Whether sqlglot reads ``sql`` as exactly one real statement (not a bare expression,
    an empty SELECT or an unparsed Command)."""
    try:
        parsed = [e for e in sqlglot.parse(sql, read=dialect) if e is not None]
    except Exception:  # noqa: BLE001 - any sqlglot failure just means "not this candidate"
        return False
    if len(parsed) != 1 or not isinstance(parsed[0], _STATEMENTS):
        return False
    tree = parsed[0]
    if isinstance(tree, (exp.Select, exp.Update)) and not tree.expressions:
        return False
    return not need_from or tree.find(exp.From) is not None


def _finish(sql: str) -> str:
    """Strip whitespace and trailing semicolons."""
    return sql.strip().rstrip(";").strip()


def _code_mask(text: str) -> list[bool]:
    """For each character: True when it is SQL code, False inside a string literal,
    quoted identifier or comment. A ``` fence is code (it ends the statement)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        if text.startswith("```", i):
            i += 3
            continue
        ch = text[i]
        if ch in "'\"`":
            end = text.find(ch, i + 1)
        elif text.startswith("--", i):
            end = text.find("\n", i) - 1 if "\n" in text[i:] else -1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = end + 1 if end != -1 else -1
        else:
            i += 1
            continue
        end = n - 1 if end < 0 else end
        for j in range(i, end + 1):
            mask[j] = False
        i = end + 1
    return mask
