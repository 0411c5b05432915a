"""A gate param that names a file is checked at load time: a missing or wrong file is an
exit-2 error naming ``file:line: nodes.NODE.params.PARAM``, and nothing is written."""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from tests.support.project import ProjectDir

TARGET = "targets/x.yaml"


def target(db: str, check: str = "sqlite_exec") -> str:
    return textwrap.dedent(
        f"""\
        fdbuild: 1
        name: x
        nodes:
          src:
            kind: source
            path: ../data/s.jsonl
          checked:
            kind: gate
            input: src
            check: {check}
            params:
              gold: null
              db: {db}
          out:
            kind: export
            input: checked
            format: jsonl
            path: ../out/x.jsonl
        """
    )


DB_LINE = 13


def load_error(project: ProjectDir, text: str) -> str:
    project.gen({"data/s.jsonl": '{"sql": "SELECT 1"}\n', TARGET: text})
    res = project.build(TARGET, expect=2)
    assert "Traceback" not in res.stderr
    assert not (project.root / ".fdbuild").exists()
    assert not (project.root / "fdbuild.lock").exists()
    assert not (project.root / "out").exists()
    return res.stderr


def test_missing_database_names_file_line_and_key(project: ProjectDir) -> None:
    err = load_error(project, target("../examples/nope.db"))
    assert (
        f"x.yaml:{DB_LINE}: nodes.checked.params.db: database not found: ../examples/nope.db"
    ) in err
    assert str(project.root / "examples" / "nope.db") in err  # and where it looked


def test_folder_as_database(project: ProjectDir) -> None:
    (project.root / "dbs").mkdir()
    err = load_error(project, target("../dbs"))
    assert f"x.yaml:{DB_LINE}: nodes.checked.params.db: database is not a file: ../dbs" in err


def test_file_that_is_not_a_database(project: ProjectDir) -> None:
    project.gen({"notes.db": "hello, not a database\n"})
    err = load_error(project, target("../notes.db"))
    assert f"x.yaml:{DB_LINE}: nodes.checked.params.db: not an SQLite database: ../notes.db" in err


def test_a_real_database_loads_and_builds(project: ProjectDir) -> None:
    conn = sqlite3.connect(project.root / "real.db")
    conn.execute("CREATE TABLE t (a)")
    conn.commit()
    conn.close()
    project.gen({"data/s.jsonl": '{"sql": "SELECT 1"}\n', TARGET: target("../real.db")})
    project.build(TARGET)
    assert (project.root / "out/x.jsonl").exists()


class FileParams(CheckParams):
    db: str = Field(description="a file the check reads")
    gold: None = None


class FileCheck(Check[FileParams]):
    """A check naming a file only through ``file_deps``: the graph's generic check."""

    name = "file_check"
    version = "1"
    Params = FileParams
    outputs = {"ok": "bool"}

    def reads(self) -> Sequence[str]:
        return []

    def file_deps(self) -> Mapping[str, Path]:
        return {"db": self.resolve_path(self.params.db)}

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"ok": True}


def test_any_check_file_param_is_checked_at_load(
    project: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fdbuild.checks as checks

    monkeypatch.setitem(checks._BUILTIN, "file_check", f"{__name__}:FileCheck")
    err = load_error(project, target("../gone.txt", check="file_check"))
    assert f"x.yaml:{DB_LINE}: nodes.checked.params.db: file not found: ../gone.txt" in err
