"""A small WikiSQL release written by hand, for importer tests (the real one needs internet).

It is written here with plain ``json`` and ``sqlite3``, not with the importer's own
``write_release``, so that a misreading of the format in the code under test is not
mirrored in its test input. Layout follows the official release: ``<split>.jsonl``,
``<split>.tables.jsonl`` (readable headers, original casing) and ``<split>.db`` (tables
``table_<id with - as _>``, columns ``col0..colN`` typed TEXT/REAL, text lower-cased).

Besides the good questions (every aggregate and every supported operator), the release
holds rows the importer must skip, each labelled with the reason it should report, and a
few db quirks: a table kept in its original casing, a table missing from the db, a table
whose db column count differs from its header, and a view that fails at run time.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLAYERS = {
    "id": "1-10000-1",
    "header": ["Player", "Nationality", "Position", "Goals", "Height (m)"],
    "types": ["text", "text", "text", "real", "real"],
    "rows": [
        ["Lionel Messi", "Argentina", "Forward", 28, 1.70],
        ["Virgil van Dijk", "Netherlands", "Defender", 4, 1.93],
        ["Kevin De Bruyne", "Belgium", "Midfielder", 9, 1.81],
        ["Vinícius Júnior", "Brazil", "Forward", 24, 1.76],
        ["Nicolás Otamendi", "Argentina", "Defender", 2, 1.83],
        ["N'Golo Kanté", "France", "Midfielder", 3, 1.68],
        ["Erling Haaland", "Norway", "Forward", 36, 1.95],
        ["Marquinhos", "Brazil", "Defender", 3, 1.83],
    ],
}

CITIES = {
    "id": "1-20000-2",
    "header": ["City", "Country", "Population", "Founded"],
    "types": ["text", "text", "real", "text"],
    "rows": [
        ["Lyon", "France", 522969, "43 BC"],
        ["Paris", "France", 2102650, "3rd century BC"],
        ["Melbourne", "Australia", 5078193, "1835"],
        ["Chicago", "United States", 2746388, "1837"],
        ["St. John's", "Canada", 110525, "1630"],
        ["Wellington", "New Zealand", 215400, "1840"],
        ["Denver", "United States", 715522, "1858"],
    ],
}

# Kept in its original casing in the db: literals must then keep theirs.
ALBUMS = {
    "id": "2-30000-3",
    "header": ["Album", "Artist", "Year", "Sales (millions)", "Label"],
    "types": ["text", "text", "real", "real", "text"],
    "rows": [
        ["Thriller", "Michael Jackson", 1982, 70, "Epic"],
        ["Back in Black", "AC/DC", 1980, 50, "Atlantic"],
        ["The Dark Side of the Moon", "Pink Floyd", 1973, 45, "Harvest"],
        ["The Wall", "Pink Floyd", 1979, 30, "Harvest"],
        ["Bad", "Michael Jackson", 1987, 35, "Epic"],
        ["Come On Over", "Shania Twain", 1997, 40, "Mercury"],
    ],
}

# In tables.jsonl but not in the db.
GHOST = {
    "id": "1-40000-4",
    "header": ["Name", "Score"],
    "types": ["text", "real"],
    "rows": [["Ann", 1]],
}

# In the db as a view whose second column overflows (abs of the smallest integer).
BROKEN = {
    "id": "1-50000-5",
    "header": ["Name", "Value"],
    "types": ["text", "real"],
    "rows": [["a", 1]],
}

# The header has three columns, the db table two.
NARROW = {
    "id": "1-60000-6",
    "header": ["Team", "Wins", "Losses"],
    "types": ["text", "real", "real"],
    "rows": [["Reds", 3, 1]],
}

TABLES = [PLAYERS, CITIES, ALBUMS, GHOST, BROKEN, NARROW]
LOWERCASED_IN_DB = {PLAYERS["id"], CITIES["id"]}


@dataclass(frozen=True)
class FixtureQuestion:
    """One line of ``<split>.jsonl``; ``skip`` is the reason the importer must report, if any."""

    table_id: str
    question: str
    sel: int
    agg: int
    conds: list[list[Any]]
    skip: str | None = None

    def line(self) -> dict[str, Any]:
        return {
            "phase": 1,
            "table_id": self.table_id,
            "question": self.question,
            "sql": {"sel": self.sel, "agg": self.agg, "conds": self.conds},
        }


def _q(
    table: dict[str, Any],
    question: str,
    sel: int,
    agg: int,
    conds: list[list[Any]],
    skip: str | None = None,
) -> FixtureQuestion:
    return FixtureQuestion(table["id"], question, sel, agg, conds, skip)


P, C, A = PLAYERS, CITIES, ALBUMS
QUESTIONS: list[FixtureQuestion] = [
    _q(P, "Which player is from Brazil?", 0, 0, [[1, 0, "Brazil"]]),
    _q(P, "How many goals did Lionel Messi score?", 3, 0, [[0, 0, "Lionel Messi"]]),
    _q(P, "What is the most goals scored by a forward?", 3, 1, [[2, 0, "Forward"]]),
    _q(P, "What is the fewest goals by a player taller than 1.80 m?", 3, 2, [[4, 1, "1.80"]]),
    _q(P, "How many players are shorter than 1.75 m?", 0, 3, [[4, 2, 1.75]]),
    _q(P, "What is the total number of goals by Argentine players?", 3, 4, [[1, 0, "ARGENTINA"]]),
    _q(P, "What is the average height of defenders?", 4, 5, [[2, 0, "Defender"]]),
    _q(P, "Which forwards scored more than 20 goals?", 0, 0, [[3, 1, "20"], [2, 0, "forward"]]),
    _q(P, "How many players are listed?", 0, 3, []),
    _q(
        P,
        "Which players are taller than 1.70 m but shorter than 1.85 m?",
        0,
        0,
        [[4, 1, 1.7], [4, 2, 1.85]],
    ),
    _q(P, "Which player is from Japan?", 0, 0, [[1, 0, "Japan"]]),
    _q(P, "What position does N'Golo Kanté play?", 2, 0, [[0, 0, "N'Golo Kanté"]]),
    _q(C, "Which country is Lyon in?", 1, 0, [[0, 0, "Lyon"]]),
    _q(C, "What is the population of the city founded in 1835?", 2, 0, [[3, 0, 1835]]),
    _q(C, "Which cities have more than 2,000,000 people?", 0, 0, [[2, 1, "2,000,000"]]),
    _q(C, "What is the largest population of a French city?", 2, 1, [[1, 0, "France"]]),
    _q(C, "What is the smallest population in the list?", 2, 2, []),
    _q(C, "What is the average population of cities under 1 million?", 2, 5, [[2, 2, "1000000"]]),
    _q(C, "Which country is St. John's in?", 1, 0, [[0, 0, "St. John's"]]),
    _q(A, "Who recorded Thriller?", 1, 0, [[0, 0, "Thriller"]]),
    _q(A, "How many albums came out after 1985?", 0, 3, [[2, 1, 1985]]),
    _q(
        A,
        "What are the total sales of Pink Floyd albums from before 1978?",
        3,
        4,
        [[2, 2, 1978], [1, 0, "Pink Floyd"]],
    ),
    _q(A, "What are the average sales of albums on Epic?", 3, 5, [[4, 0, "Epic"]]),
    _q(A, "Which album sold 45 million copies?", 0, 0, [[3, 0, 45.0]]),
    # Rows the importer must skip, with the reason it must give.
    _q(P, "Which player's name contains 'messi'?", 0, 0, [[0, 3, "messi"]], "unsupported_op"),
    _q(P, "Which player has goals like 3?", 0, 0, [[3, 7, 3]], "unknown_op"),
    _q(P, "What is the median goal count?", 3, 6, [], "unknown_agg"),
    _q(P, "What is the shirt number of Messi?", 9, 0, [[0, 0, "Lionel Messi"]], "bad_column"),
    _q(P, "Who wears number 10?", 0, 0, [[9, 0, "10"]], "bad_column"),
    _q(P, "Who is n/a metres tall?", 0, 0, [[4, 0, "n/a"]], "bad_literal"),
    _q(P, "Who is from nowhere?", 0, 0, [[1, 0, None]], "bad_literal"),
    _q(P, "   ", 0, 0, [], "empty_question"),
    FixtureQuestion("9-99999-9", "What is in the missing table?", 0, 0, [], "unknown_table"),
    _q(GHOST, "What did Ann score?", 1, 0, [[0, 0, "Ann"]], "table_not_in_db"),
    _q(BROKEN, "What is the value for a?", 1, 0, [[0, 0, "a"]], "gold_exec_error"),
    _q(NARROW, "How many wins do the Reds have?", 1, 0, [[0, 0, "Reds"]], "schema_mismatch"),
]


@dataclass(frozen=True)
class WikiSQLFixture:
    """Where the release was written and what the importer should make of it."""

    folder: Path
    split: str
    tables: dict[str, dict[str, Any]]
    questions: list[FixtureQuestion]

    @property
    def expected_skips(self) -> dict[str, int]:
        return dict(Counter(q.skip for q in self.questions if q.skip))

    @property
    def usable(self) -> int:
        return sum(1 for q in self.questions if q.skip is None)

    def path(self, kind: str) -> Path:
        """``questions``, ``tables`` or ``db`` file of the split."""
        suffix = {"questions": ".jsonl", "tables": ".tables.jsonl", "db": ".db"}[kind]
        return self.folder / f"{self.split}{suffix}"


def _db_table(
    conn: sqlite3.Connection, table: dict[str, Any], lower: bool, columns: int | None = None
) -> None:
    types = table["types"][:columns] if columns else table["types"]
    name = "table_" + table["id"].replace("-", "_")
    decl = ", ".join(f"col{i} {'REAL' if t == 'real' else 'TEXT'}" for i, t in enumerate(types))
    conn.execute(f"CREATE TABLE {name} ({decl})")
    for row in table["rows"]:
        cells = [
            float(v) if t == "real" else (str(v).lower() if lower else str(v))
            for v, t in zip(row, types, strict=False)
        ]
        conn.execute(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cells)})", cells)


def _write_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        for table in (PLAYERS, CITIES, ALBUMS):
            _db_table(conn, table, lower=table["id"] in LOWERCASED_IN_DB)
        _db_table(conn, NARROW, lower=True, columns=2)
        conn.execute("CREATE TABLE raw_values (col0 TEXT, col1 INTEGER)")
        conn.execute("INSERT INTO raw_values VALUES ('a', ?)", (-(2**63),))
        conn.execute(
            "CREATE VIEW table_1_50000_5 AS SELECT col0, abs(col1) AS col1 FROM raw_values"
        )
        conn.commit()
    finally:
        conn.close()


def write_wikisql_fixture(folder: Path, split: str = "train") -> WikiSQLFixture:
    """Write the release into ``folder`` (created if needed) and describe it."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{split}.tables.jsonl").open("w", encoding="utf-8") as handle:
        for table in TABLES:
            handle.write(json.dumps(table) + "\n")
    with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
        for question in QUESTIONS:
            handle.write(json.dumps(question.line()) + "\n")
    _write_db(folder / f"{split}.db")
    return WikiSQLFixture(folder, split, {t["id"]: t for t in TABLES}, list(QUESTIONS))


def _number(value: Any) -> float:
    return float(str(value).replace(",", "")) if isinstance(value, str) else float(value)


def _matches(cell: Any, op: int, value: Any, type_: str, lower: bool) -> bool:
    if type_ == "real":
        left, right = float(cell), _number(value)
    else:
        left = str(cell).lower() if lower else str(cell)
        right = str(value).lower() if lower else str(value)
    return {0: left == right, 1: left > right, 2: left < right}[op]


def expected_answer(fixture: WikiSQLFixture, question: FixtureQuestion) -> list[Any]:
    """What the structured query means, computed from the table rows in plain Python.

    Returns the sorted list of result values (one value for an aggregate), in the form
    the db stores them: lower-cased text for lower-cased tables, floats for real columns.
    """
    table = fixture.tables[question.table_id]
    lower = question.table_id in LOWERCASED_IN_DB
    types = table["types"]
    rows = [
        row
        for row in table["rows"]
        if all(_matches(row[c], op, v, types[c], lower) for c, op, v in question.conds)
    ]

    def stored(value: Any) -> Any:
        if types[question.sel] == "real":
            return float(value)
        return str(value).lower() if lower else str(value)

    values = [stored(row[question.sel]) for row in rows]
    agg = question.agg
    if agg == 0:
        return sorted(values)
    if agg == 3:
        return [len(values)]
    if not values:
        return [None]
    if agg == 1:
        return [max(values)]
    if agg == 2:
        return [min(values)]
    if agg == 4:
        return [sum(values)]
    return [sum(values) / len(values)]
