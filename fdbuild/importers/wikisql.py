"""Import the official WikiSQL release as a Text2SQL source: questions JSONL plus its db.

The release has three files per split: ``<split>.jsonl`` (questions with a structured
query ``{"sel", "agg", "conds"}``), ``<split>.tables.jsonl`` (readable headers and rows)
and ``<split>.db`` (SQLite; table ``table_<id, '-' -> '_'>``, columns ``col0..colN``).
This module writes ``<out>/<split>.jsonl`` (one question per line, with a ``gold_sql``
that runs on the db) and ``<out>/<split>.db`` (a byte copy of the release db).

Decisions, and how they differ from FastDistill's ``prepare_wikisql_1k.py``:

* **Schema text is real SQLite DDL with the db's own column names** (``col0 TEXT, --
  Player``): the db cannot be queried by header, and renaming its columns would make the
  copy differ from the release. FastDistill's ``t(col0:text [Player])`` is not SQL, so the
  teacher had to guess the dialect. Headers go in ``--`` comments, so the teacher can map
  words to columns while gold and teacher both use ``colN``.
* **Lower-case literals are stated, not hidden.** The official evaluator lower-cases every
  string condition because the db's text cells are lower case. The importer checks that
  per table: when every text cell is lower case it lower-cases literals and the schema
  text says so; otherwise it keeps the literal as written. FastDistill lower-cased
  silently, so correct teacher SQL with the question's casing matched nothing.
* **Literals are typed by the db column** (numeric affinity -> number, else quoted
  text), numbers are parsed the way the official evaluator does (thousands separators,
  else the first number in the text), and every condition keeps its own value (the
  official evaluator binds by column name, so two conditions on one column collide).
* **Every gold query is executed** on the copied db before it is written; failures are
  skipped and counted, never written.
* **Sampling is streaming and nested**: each usable question gets the priority
  ``blake2b(seed, line index)`` and the ``limit`` lowest are kept, written in file order.
  The same seed gives the same bytes; a larger ``limit`` with the same seed keeps every
  row of a smaller one. ``task_id`` is ``wikisql-<split>-<0-based line index, 6 digits>``,
  so it names the source line, not a position in the sample.

This module runs the import. The parts live beside it: ``wikisql_release`` (the release
layout, read strictly and written for hand-made sets), ``wikisql_gold`` (schema text,
typed literals, gold SQL), ``wikisql_db`` (the copied db and gold verification),
``wikisql_sample`` (the sampler) and ``wikisql_atomic`` (temp files moved into place).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdbuild.errors import FdbuildError, SpecError
from fdbuild.importers.wikisql_atomic import copy_db, write_jsonl
from fdbuild.importers.wikisql_db import Database
from fdbuild.importers.wikisql_gold import (
    AGG_OPS,
    COND_OPS,
    SKIP_REASONS,
    SUPPORTED_OPS,
    Skip,
    Table,
    build_gold_sql,
    format_schema,
)
from fdbuild.importers.wikisql_release import (
    Question,
    load_headers,
    parse_question,
    read_jsonl,
    sqlite_table_name,
    write_release,
)
from fdbuild.importers.wikisql_sample import Sampler

__all__ = [
    "AGG_OPS",
    "COND_OPS",
    "SKIP_REASONS",
    "SUPPORTED_OPS",
    "ImportReport",
    "build_gold_sql",
    "format_schema",
    "import_wikisql",
    "sqlite_table_name",
    "write_release",
]

_SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ImportReport:
    """What an import did; the CLI prints it, tests assert on it.

    ``skipped`` counts rows of the whole split that could not become a runnable gold
    query, by reason. ``usable`` rows are the population the sample is drawn from.
    ``empty_gold_results`` counts written rows whose gold query returns nothing (or only
    NULL): still valid SQL, but worth knowing about when a teacher is scored on them.
    """

    split: str
    seed: int
    limit: int | None
    questions_read: int
    usable: int
    rows_written: int
    skipped: dict[str, int]
    empty_gold_results: int
    jsonl_path: Path
    db_path: Path


# --------------------------------------------------------------------------- import


def _check_args(src: Path, split: str, limit: int | None, out: Path) -> dict[str, Path]:
    """Validate arguments and return the three release files; nothing is written yet."""
    if not _SPLIT_RE.match(split):
        raise SpecError(f"--split: {split!r} is not a plain split name (e.g. train, dev, test)")
    if limit is not None and limit < 1:
        raise SpecError(f"--limit: must be a positive integer, got {limit}")
    if not src.is_dir():
        raise SpecError(f"--src: {src} is not a directory")
    files = {
        "questions": src / f"{split}.jsonl",
        "tables": src / f"{split}.tables.jsonl",
        "db": src / f"{split}.db",
    }
    for path in files.values():
        if not path.is_file():
            raise SpecError(
                f"{path}: missing; a WikiSQL release has {split}.jsonl, "
                f"{split}.tables.jsonl and {split}.db in --src"
            )
    if out.exists() and out.resolve() == src.resolve():
        raise SpecError(f"--out: {out} is the --src folder; the import would overwrite its input")
    return files


def _record(split: str, q: Question, table: Table, gold: str) -> dict[str, Any]:
    return {
        "task_id": f"wikisql-{split}-{q.index:06d}",
        "question": q.question,
        "schema": table.schema,
        "table_id": q.table_id,
        "table": table.sql_name,
        "gold_sql": gold,
        "structured_query": {"sel": q.sel, "agg": q.agg, "conds": q.conds},
    }


def _is_empty(rows: Sequence[tuple[Any, ...]]) -> bool:
    return all(value is None for row in rows for value in row)


def _scan(
    files: Mapping[str, Path], db: Database, split: str, sampler: Sampler
) -> tuple[int, Counter[str]]:
    """Read every question, build and verify its gold query, offer usable ones to the sampler."""
    headers = load_headers(files["tables"])
    skipped: Counter[str] = Counter()
    read = 0
    path = files["questions"]
    for lineno, obj in read_jsonl(path):
        read += 1
        q = parse_question(path, lineno, obj)
        try:
            if not q.question.strip():
                raise Skip("empty_question")
            if q.table_id not in headers:
                raise Skip("unknown_table")
            table = db.table(q.table_id, headers[q.table_id])
            gold = build_gold_sql(table, q.sel, q.agg, q.conds)
            rows = db.run(gold)
        except Skip as skip:
            skipped[skip.reason] += 1
            continue
        sampler.offer(q.index, _record(split, q, table, gold), _is_empty(rows))
    return read, skipped


def import_wikisql(src: Path, split: str, limit: int | None, seed: int, out: Path) -> ImportReport:
    """Import one split of a WikiSQL release into ``out/<split>.jsonl`` and ``out/<split>.db``.

    Both outputs appear together or not at all: they are written to temp files in ``out``
    and moved into place with ``os.replace`` only after every row has been verified.
    Raises SpecError (naming file, line and key) for missing files or malformed lines.
    """
    src, out = Path(src), Path(out)
    files = _check_args(src, split, limit, out)
    out.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        tmp_db = copy_db(files["db"], out, f"{split}.db")
        temps.append(tmp_db)
        db = Database(tmp_db, shown_as=files["db"])
        sampler = Sampler(seed, limit)
        try:
            read, skipped = _scan(files, db, split, sampler)
        finally:
            db.close()
        chosen = sampler.chosen()
        tmp_jsonl = write_jsonl([rec for rec, _ in chosen], out, f"{split}.jsonl")
        temps.append(tmp_jsonl)
        db_path, jsonl_path = out / f"{split}.db", out / f"{split}.jsonl"
        os.replace(tmp_db, db_path)
        os.replace(tmp_jsonl, jsonl_path)
        temps.clear()
    except OSError as exc:
        raise FdbuildError(f"{exc.filename or out}: cannot import WikiSQL: {exc.strerror}") from exc
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return ImportReport(
        split=split,
        seed=seed,
        limit=limit,
        questions_read=read,
        usable=read - sum(skipped.values()),
        rows_written=len(chosen),
        skipped={reason: skipped[reason] for reason in sorted(skipped)},
        empty_gold_results=sum(1 for _, empty in chosen if empty),
        jsonl_path=jsonl_path,
        db_path=db_path,
    )
