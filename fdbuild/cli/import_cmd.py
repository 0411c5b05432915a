"""``fdbuild import wikisql``: turn a WikiSQL release into a source JSONL and its db.

Importing is a one-off step before any build: its output is a plain file that a target's
``source`` node reads and the lock fingerprints, so builds never depend on the sampler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the command runs: `fdbuild --version` stays fast
    from fdbuild.importers.wikisql import ImportReport

DEFAULT_SEED = 13  # FastDistill's prepare script default, so a 1k sample is easy to compare.


def _positive_int(text: str) -> int:
    """argparse type for --limit: a clear usage error (exit 2) instead of a traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``import`` (with its ``wikisql`` subcommand) to the top-level parser."""
    parser = subparsers.add_parser(
        "import",
        help="import a public dataset as a source file",
        description="Import a public dataset into a source JSONL (and database) for targets.",
    )
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    wikisql = sources.add_parser(
        "wikisql",
        help="WikiSQL release -> questions JSONL with gold_sql, plus its SQLite db",
        description=(
            "Read <split>.jsonl, <split>.tables.jsonl and <split>.db from a WikiSQL release, "
            "build a gold SQL query for every question (skipping unsupported ones), run each "
            "on the database, and write OUT/<split>.jsonl (task_id, question, schema, table_id, "
            "table, gold_sql, structured_query) and OUT/<split>.db (a copy of the release db). "
            "The sample is deterministic: the same --seed gives the same bytes, and a larger "
            "--limit keeps every row of a smaller one."
        ),
    )
    wikisql.add_argument(
        "--src",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder holding the release files (e.g. the unpacked data/ folder)",
    )
    wikisql.add_argument(
        "--split",
        default="train",
        metavar="NAME",
        help="which split to import: train, dev or test (default: train)",
    )
    wikisql.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="keep a seeded sample of N usable questions (default: all of them)",
    )
    wikisql.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="S",
        help=f"sampling seed (default: {DEFAULT_SEED})",
    )
    wikisql.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder; OUT/<split>.jsonl and OUT/<split>.db are replaced atomically",
    )
    wikisql.set_defaults(func=run)


def summary(report: ImportReport) -> str:
    """One paragraph: what was written, what was skipped and why, and where it went."""
    sample = "all usable questions" if report.limit is None else f"limit {report.limit}"
    skipped_total = sum(report.skipped.values())
    if skipped_total:
        reasons = ", ".join(f"{reason} {n}" for reason, n in report.skipped.items())
        skipped = f"skipped {skipped_total} ({reasons})"
    else:
        skipped = "skipped none"
    empty = (
        f" {report.empty_gold_results} written gold queries return no rows or only NULL."
        if report.empty_gold_results
        else ""
    )
    return (
        f"Imported WikiSQL split '{report.split}': wrote {report.rows_written} rows "
        f"({sample}, seed {report.seed}) from {report.questions_read} questions, "
        f"{report.usable} usable, {skipped}.{empty} "
        f"Questions: {report.jsonl_path}  Database: {report.db_path}"
    )


def run(args: argparse.Namespace) -> int:
    """Handler of ``fdbuild import wikisql``; errors propagate as FdbuildError (exit 1/2)."""
    print(f"importing WikiSQL {args.split} from {args.src} ...", file=sys.stderr)
    from fdbuild.importers.wikisql import import_wikisql

    report = import_wikisql(args.src, args.split, args.limit, args.seed, args.out)
    print(summary(report))
    return 0
