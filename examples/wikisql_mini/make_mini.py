"""Make examples/wikisql_mini: a small Text2SQL set in the WikiSQL importer's format.

It writes five hand-made tables and their questions as a WikiSQL-format release (the
same three files per split as the official one) into a temporary folder, then runs the
project's own importer on it, so the shipped files are exactly what
``fdbuild import wikisql`` makes. Country and film figures are rounded, public numbers
(for illustration only); players, stations and products are invented.

    python examples/wikisql_mini/make_mini.py          # rewrites train.* and dev.* here
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from fdbuild.importers.wikisql import ImportReport, import_wikisql, write_release

HERE = Path(__file__).resolve().parent
SEED = 13  # unused for the full import (no --limit), kept for the record

TABLES: dict[str, dict[str, Any]] = {
    "countries": {
        "id": "1-1001-1",
        "header": ["Country", "Continent", "Capital", "Population (millions)", "Area (km²)"],
        "types": ["text", "text", "text", "real", "real"],
        "rows": [
            ["France", "Europe", "Paris", 68.2, 551695],
            ["Germany", "Europe", "Berlin", 84.5, 357588],
            ["Japan", "Asia", "Tokyo", 124.5, 377975],
            ["Brazil", "South America", "Brasília", 203.1, 8515767],
            ["Canada", "North America", "Ottawa", 40.1, 9984670],
            ["Kenya", "Africa", "Nairobi", 55.1, 580367],
            ["Australia", "Oceania", "Canberra", 26.6, 7692024],
            ["India", "Asia", "New Delhi", 1428.6, 3287263],
            ["Mexico", "North America", "Mexico City", 128.5, 1964375],
            ["Egypt", "Africa", "Cairo", 112.7, 1002450],
        ],
    },
    "films": {
        "id": "1-1002-1",
        "header": ["Title", "Director", "Year", "Runtime (min)", "Box office ($M)"],
        "types": ["text", "text", "real", "real", "real"],
        "rows": [
            ["Jaws", "Steven Spielberg", 1975, 124, 476.5],
            ["Star Wars", "George Lucas", 1977, 121, 775.8],
            ["E.T. the Extra-Terrestrial", "Steven Spielberg", 1982, 115, 792.9],
            ["Titanic", "James Cameron", 1997, 195, 2264.7],
            ["The Matrix", "The Wachowskis", 1999, 136, 467.2],
            ["Spirited Away", "Hayao Miyazaki", 2001, 125, 395.8],
            ["Avatar", "James Cameron", 2009, 162, 2923.7],
            ["Parasite", "Bong Joon-ho", 2019, 132, 262.1],
        ],
    },
    "players": {
        "id": "1-1003-1",
        "header": ["Player", "Club", "Position", "Goals", "Appearances"],
        "types": ["text", "text", "text", "real", "real"],
        "rows": [
            ["Tomás Ferreira", "Harbor City", "Forward", 21, 34],
            ["Jonas Lindqvist", "Harbor City", "Midfielder", 6, 31],
            ["Amara Okafor", "Northgate United", "Forward", 17, 33],
            ["Luca Bellini", "Northgate United", "Defender", 2, 36],
            ["Sean O'Connell", "Riverside Rovers", "Goalkeeper", 0, 38],
            ["Mateo Ruiz", "Riverside Rovers", "Forward", 12, 29],
            ["Kenji Watanabe", "Harbor City", "Defender", 3, 35],
            ["Piotr Nowak", "Northgate United", "Midfielder", 8, 30],
            ["Yusuf Demir", "Riverside Rovers", "Midfielder", 5, 27],
        ],
    },
    "stations": {
        "id": "1-1004-1",
        "header": ["Station", "Line", "Zone", "Opened", "Daily passengers"],
        "types": ["text", "text", "real", "real", "real"],
        "rows": [
            ["Central", "Red", 1, 1912, 48200],
            ["Market Street", "Red", 1, 1912, 31500],
            ["University", "Blue", 2, 1968, 22800],
            ["Harbour View", "Blue", 2, 1971, 12400],
            ["Old Mill", "Green", 3, 1994, 6100],
            ["Airport", "Green", 4, 2006, 18900],
            ["Stadium", "Red", 2, 1985, 9700],
        ],
    },
    "products": {
        "id": "1-1005-1",
        "header": ["Product", "Category", "Brand", "Price (USD)", "Units in stock"],
        "types": ["text", "text", "text", "real", "real"],
        "rows": [
            ["Trail Runner 2", "Shoes", "Peakline", 129.99, 40],
            ["City Sneaker", "Shoes", "Urbanstep", 79.5, 85],
            ["Rain Shell Jacket", "Outerwear", "Peakline", 189.0, 22],
            ["Fleece Pullover", "Outerwear", "Northfold", 64.0, 57],
            ["Merino Socks", "Accessories", "Northfold", 18.0, 240],
            ["Daypack 20L", "Bags", "Peakline", 89.0, 31],
            ["Canvas Tote", "Bags", "Urbanstep", 24.99, 112],
            ["Wool Beanie", "Accessories", "Northfold", 29.0, 95],
        ],
    },
}

# (table, question, sel, agg, conds); agg: 0 none, 1 MAX, 2 MIN, 3 COUNT, 4 SUM, 5 AVG;
# condition operator: 0 '=', 1 '>', 2 '<'.
Q = tuple[str, str, int, int, list[list[Any]]]

TRAIN: list[Q] = [
    ("countries", "What is the capital of Kenya?", 2, 0, [[0, 0, "Kenya"]]),
    ("countries", "Which countries are in Asia?", 0, 0, [[1, 0, "Asia"]]),
    ("countries", "How many countries are in Africa?", 0, 3, [[1, 0, "Africa"]]),
    (
        "countries",
        "What is the largest area of a North American country?",
        4,
        1,
        [[1, 0, "North America"]],
    ),
    ("countries", "Which countries have more than 100 million people?", 0, 0, [[3, 1, 100]]),
    (
        "countries",
        "What is the total population of European countries, in millions?",
        3,
        4,
        [[1, 0, "Europe"]],
    ),
    ("countries", "Which country has Brasília as its capital?", 0, 0, [[2, 0, "Brasília"]]),
    (
        "countries",
        "What is the smallest population among countries larger than 5,000,000 km²?",
        3,
        2,
        [[4, 1, "5,000,000"]],
    ),
    ("films", "Who directed Spirited Away?", 1, 0, [[0, 0, "Spirited Away"]]),
    ("films", "How many films did Steven Spielberg direct?", 0, 3, [[1, 0, "Steven Spielberg"]]),
    (
        "films",
        "What is the longest runtime of a James Cameron film?",
        3,
        1,
        [[1, 0, "James Cameron"]],
    ),
    ("films", "Which films came out before 1980?", 0, 0, [[2, 2, 1980]]),
    (
        "films",
        "What is the average box office of films released after 1995, in millions of dollars?",
        4,
        5,
        [[2, 1, 1995]],
    ),
    ("films", "In what year was The Matrix released?", 2, 0, [[0, 0, "The Matrix"]]),
    ("films", "Which film made more than 2,500 million dollars?", 0, 0, [[4, 1, "2500"]]),
    ("films", "What is the shortest runtime of any film on the list?", 3, 2, []),
    ("players", "Which club does Amara Okafor play for?", 1, 0, [[0, 0, "Amara Okafor"]]),
    (
        "players",
        "How many goals did the Harbor City players score in total?",
        3,
        4,
        [[1, 0, "Harbor City"]],
    ),
    ("players", "Who scored more than 15 goals?", 0, 0, [[3, 1, 15]]),
    ("players", "What is the most goals scored by a midfielder?", 3, 1, [[2, 0, "Midfielder"]]),
    ("players", "How many forwards are there?", 0, 3, [[2, 0, "Forward"]]),
    ("players", "What position does Sean O'Connell play?", 2, 0, [[0, 0, "Sean O'Connell"]]),
    (
        "players",
        "What is the average number of appearances for Riverside Rovers players?",
        4,
        5,
        [[1, 0, "Riverside Rovers"]],
    ),
    (
        "players",
        "Which defender played more than 35 games?",
        0,
        0,
        [[2, 0, "Defender"], [4, 1, 35]],
    ),
    ("stations", "Which line is University station on?", 1, 0, [[0, 0, "University"]]),
    ("stations", "When did the Airport station open?", 3, 0, [[0, 0, "Airport"]]),
    ("stations", "How many stations are on the Red line?", 0, 3, [[1, 0, "Red"]]),
    ("stations", "Which stations opened before 1950?", 0, 0, [[3, 2, 1950]]),
    (
        "stations",
        "What is the highest daily passenger count on the Blue line?",
        4,
        1,
        [[1, 0, "Blue"]],
    ),
    ("stations", "What is the total number of daily passengers across all stations?", 4, 4, []),
    (
        "stations",
        "Which stations in zone 2 have fewer than 15,000 daily passengers?",
        0,
        0,
        [[2, 0, 2], [4, 2, "15,000"]],
    ),
    (
        "stations",
        "What is the earliest opening year of a station in zone 3 or above?",
        3,
        2,
        [[2, 1, 2]],
    ),
    ("products", "What brand makes the Fleece Pullover?", 2, 0, [[0, 0, "Fleece Pullover"]]),
    ("products", "How much does the Daypack 20L cost?", 3, 0, [[0, 0, "Daypack 20L"]]),
    ("products", "What is the cheapest Peakline product's price?", 3, 2, [[2, 0, "Peakline"]]),
    ("products", "Which products cost more than $100?", 0, 0, [[3, 1, 100]]),
    ("products", "How many products are accessories?", 0, 3, [[1, 0, "Accessories"]]),
    ("products", "What is the average price of shoes?", 3, 5, [[1, 0, "Shoes"]]),
    (
        "products",
        "How many units of Northfold products are in stock in total?",
        4,
        4,
        [[2, 0, "Northfold"]],
    ),
    ("products", "Which products have fewer than 30 units in stock?", 0, 0, [[4, 2, 30]]),
]

DEV: list[Q] = [
    ("countries", "What continent is Egypt in?", 1, 0, [[0, 0, "Egypt"]]),
    (
        "countries",
        "What is the average population of Asian countries, in millions?",
        3,
        5,
        [[1, 0, "Asia"]],
    ),
    ("films", "Which films did James Cameron direct?", 0, 0, [[1, 0, "James Cameron"]]),
    ("films", "What is the highest box office of a film from before 1990?", 4, 1, [[2, 2, 1990]]),
    ("players", "How many goals did Mateo Ruiz score?", 3, 0, [[0, 0, "Mateo Ruiz"]]),
    ("players", "How many players have fewer than 30 appearances?", 0, 3, [[4, 2, 30]]),
    ("stations", "Which stations opened after 1980?", 0, 0, [[3, 1, 1980]]),
    (
        "stations",
        "What is the lowest daily passenger count on the Green line?",
        4,
        2,
        [[1, 0, "Green"]],
    ),
    ("products", "What category is the Canvas Tote in?", 1, 0, [[0, 0, "Canvas Tote"]]),
    ("products", "What is the total stock of bags?", 4, 4, [[1, 0, "Bags"]]),
]


def _questions(items: list[Q]) -> list[dict[str, Any]]:
    """Questions as release lines: ``{"phase", "table_id", "question", "sql"}``."""
    return [
        {
            "phase": 1,
            "table_id": TABLES[table]["id"],
            "question": question,
            "sql": {"sel": sel, "agg": agg, "conds": conds},
        }
        for table, question, sel, agg, conds in items
    ]


def make(out: Path) -> list[ImportReport]:
    """Write the raw release to a temp folder and import both splits into ``out``."""
    reports = []
    with tempfile.TemporaryDirectory(prefix="wikisql_mini_") as raw:
        for split, items in (("train", TRAIN), ("dev", DEV)):
            write_release(Path(raw), split, list(TABLES.values()), _questions(items))
            reports.append(import_wikisql(Path(raw), split, None, SEED, out))
    return reports


def main() -> int:
    for report in make(HERE):
        size = report.db_path.stat().st_size
        print(
            f"{report.jsonl_path.name}: {report.rows_written} rows, skipped {report.skipped or 0}, "
            f"{report.empty_gold_results} empty gold results; {report.db_path.name}: {size} bytes",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
