"""Export paths: inside the project unless ``allow_outside: true``; never onto a source,
a target, the lock or anything under ``.fdbuild/`` (not even with ``allow_outside``);
symlinks resolved first. Each refusal is exit 2 at the ``path`` line, and writes nothing:
no file, no run record, no lock change."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.support.project import ProjectDir

SOURCE = '{"q": "a"}\n{"q": "b"}\n'


def target(path: str, *, extra: str = "", fmt: str = "jsonl", options: str = "") -> str:
    return textwrap.dedent(
        f"""\
        fdbuild: 1
        name: base
        nodes:
          src:
            kind: source
            path: ../data/small.jsonl
          out:
            kind: export
            input: src
            format: {fmt}
            path: {json.dumps(path)}
        """
    ) + "".join(f"    {line}\n" for line in (extra, options) if line)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (the project, or a folder outside it) with its digest."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def built(project: ProjectDir) -> ProjectDir:
    """A project built once (so it has a lock, a run record and a cache to protect)."""
    project.gen({"data/small.jsonl": SOURCE, "targets/base.yaml": target("../out/ok.jsonl")})
    project.build("targets/base.yaml")
    return project


def refused(project: ProjectDir, text: str, *outside: Path) -> str:
    """Build ``text`` as targets/base.yaml: exit 2, and not one file changed anywhere."""
    project.gen({"targets/base.yaml": text})
    before = snapshot(project.root)
    before_outside = [snapshot(p) for p in outside]
    res = project.build("targets/base.yaml", expect=2)
    assert "Traceback" not in res.stderr
    line = max(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("    path: "))
    assert f"base.yaml:{line}: nodes.out.path: " in res.stderr, res.stderr
    assert snapshot(project.root) == before  # no export, run record, lock or cache change
    assert [snapshot(p) for p in outside] == before_outside
    return res.stderr


def test_the_targets_own_source(built: ProjectDir) -> None:
    err = refused(built, target("../data/small.jsonl"))
    assert "is the source file of node 'src' (base.yaml)" in err
    assert built.read("data/small.jsonl") == SOURCE


def test_the_target_file(built: ProjectDir) -> None:
    err = refused(built, target("../targets/base.yaml"))
    assert "is the target file base.yaml" in err


def test_another_loaded_target_file(built: ProjectDir) -> None:
    built.gen({"targets/other.yaml": target("../out/other.jsonl").replace("base", "other")})
    text = target("other.yaml").replace("input: src", "input: src")
    text = text.replace(
        "  src:\n    kind: source\n    path: ../data/small.jsonl\n",
        "  src:\n    kind: select\n    input: other.yaml#src\n",
    )
    err = refused(built, text)
    assert "is the target file other.yaml" in err


def test_the_cache(built: ProjectDir) -> None:
    err = refused(built, target("../.fdbuild/cache/cache.db"))
    assert "is inside the project's state folder" in err


def test_anything_under_state_folder_even_when_allowed(built: ProjectDir) -> None:
    err = refused(built, target("../.fdbuild/runs/x.jsonl", extra="allow_outside: true"))
    assert "state folder" in err and "refused even with allow_outside" in err


def test_the_lock(built: ProjectDir) -> None:
    err = refused(built, target("../fdbuild.lock", extra="allow_outside: true"))
    assert "is the project's fdbuild.lock" in err


def test_source_even_when_allowed(built: ProjectDir) -> None:
    err = refused(built, target("../data/small.jsonl", extra="allow_outside: true"))
    assert "source file" in err and "refused even with allow_outside" in err


def test_inside_a_folder_source(project: ProjectDir) -> None:
    """A ``format: hf`` source is a folder read whole: nothing may be written inside it."""
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    (project.root / "data/shards").mkdir(parents=True)
    pq.write_table(pa.table({"q": ["a", "b"]}), project.root / "data/shards/train.parquet")
    folder_target = target("../data/shards/extra.jsonl").replace(
        "path: ../data/small.jsonl", "path: ../data/shards\n    format: hf"
    )
    project.gen({"targets/base.yaml": target("../out/ok.jsonl")})
    project.gen({"data/small.jsonl": SOURCE})
    project.build("targets/base.yaml")
    err = refused(project, folder_target)
    assert "inside the source folder of node 'src'" in err
    assert not (project.root / "data/shards/extra.jsonl").exists()


def test_the_gate_database(built: ProjectDir) -> None:
    import sqlite3

    conn = sqlite3.connect(built.root / "data" / "t.db")
    conn.execute("CREATE TABLE t (a)")
    conn.commit()
    conn.close()
    text = target("../data/t.db").replace(
        "  out:\n    kind: export\n    input: src\n",
        "  checked:\n    kind: gate\n    input: src\n    check: sqlite_exec\n"
        "    params: {db: ../data/t.db, sql: q, gold: null}\n"
        "  out:\n    kind: export\n    input: checked\n",
    )
    project_line = text.splitlines().index('    path: "../data/t.db"') + 1
    built.gen({"targets/base.yaml": text})
    res = built.build("targets/base.yaml", expect=2)
    assert f"base.yaml:{project_line}: nodes.out.path:" in res.stderr
    assert "is the file read by gate 'base#checked' (params.db)" in res.stderr


def test_absolute_path_outside(built: ProjectDir, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    err = refused(built, target(str(outside / "x.jsonl")), outside)
    assert f"is outside the project folder {built.root.resolve()}" in err
    assert "allow_outside: true" in err


def test_parent_folder_outside(built: ProjectDir) -> None:
    err = refused(built, target("../../x.jsonl"), built.root.parent)
    assert "outside the project folder" in err


def test_allow_outside_writes_there_and_is_not_keyed(built: ProjectDir, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    built.gen({"targets/base.yaml": target(str(outside / "x.jsonl"), extra="allow_outside: true")})
    first = built.build("targets/base.yaml", "--json").json()
    assert first["failed"] == 0
    assert len((outside / "x.jsonl").read_text().splitlines()) == 2
    assert "allow_outside" not in built.read("fdbuild.lock")


def test_allow_outside_is_not_keyed(built: ProjectDir) -> None:
    """It cannot change the bytes, so toggling it re-exports nothing."""
    built.gen({"targets/base.yaml": target("../out/ok.jsonl", extra="allow_outside: true")})
    again = built.build("targets/base.yaml", "--json").json()
    assert again["nodes"]["out"]["computed"] == 0 and again["nodes"]["src"]["computed"] == 0


def test_home_is_expanded_and_outside(
    built: ProjectDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    err = refused(built, target("~/stolen.jsonl"), home)
    assert f"(resolves to {home.resolve() / 'stolen.jsonl'})" in err or "outside" in err
    assert "is outside the project folder" in err
    assert not (home / "stolen.jsonl").exists()


def test_symlinked_file_to_a_source(built: ProjectDir) -> None:
    (built.root / "out").mkdir(exist_ok=True)
    os.symlink(built.root / "data" / "small.jsonl", built.root / "out" / "link.jsonl")
    err = refused(built, target("../out/link.jsonl"))
    assert "resolves to" in err and "source file of node 'src'" in err
    assert built.read("data/small.jsonl") == SOURCE


def test_symlinked_file_pointing_outside(built: ProjectDir, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "victim.jsonl").write_text("precious\n")
    (built.root / "out").mkdir(exist_ok=True)
    os.symlink(outside / "victim.jsonl", built.root / "out" / "v.jsonl")
    err = refused(built, target("../out/v.jsonl"), outside)
    assert "outside the project folder" in err
    assert (outside / "victim.jsonl").read_text() == "precious\n"


def test_symlinked_parent_folder(built: ProjectDir, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, built.root / "exports")
    err = refused(built, target("../exports/x.jsonl"), outside)
    assert f"(resolves to {outside.resolve() / 'x.jsonl'})" in err
    assert "outside the project folder" in err
    assert not (outside / "x.jsonl").exists()


def test_symlinked_parent_folder_into_state(built: ProjectDir) -> None:
    os.symlink(built.root / ".fdbuild", built.root / "innocent")
    err = refused(built, target("../innocent/cache/cache.db", extra="allow_outside: true"))
    assert "state folder" in err


def test_manifest_beside_the_export_onto_a_source(built: ProjectDir) -> None:
    """The manifest is written too: ``x`` may not be an export when ``x.manifest.json``
    is a source."""
    built.gen({"data/r.jsonl.manifest.json": SOURCE})
    text = target("../data/r.jsonl").replace(
        "path: ../data/small.jsonl", "path: ../data/r.jsonl.manifest.json\n    format: jsonl"
    )
    err = refused(built, text)
    assert "r.jsonl.manifest.json, which" in err and "source file" in err


def test_mlx_file_inside_the_folder_onto_a_target(built: ProjectDir) -> None:
    """mlx_jsonl writes a folder; the files it may write there are checked too."""
    text = textwrap.dedent(
        """\
        fdbuild: 1
        name: base
        teachers:
          main: {model: m, host: "http://127.0.0.1:9"}
        nodes:
          src:
            kind: source
            path: ../data/small.jsonl
          gen: {kind: generate, input: src, teacher: main, template: "{q}"}
          out:
            kind: export
            input: gen
            format: mlx_jsonl
            options: {valid_file: base.yaml}
            path: ../targets
        """
    )
    err = refused(built, text)
    assert "base.yaml, which" in err and "target file base.yaml" in err


def test_a_folder(built: ProjectDir) -> None:
    (built.root / "out" / "adir").mkdir(parents=True)
    err = refused(built, target("../out/adir"))
    assert "is a folder" in err


def test_two_exports_one_file(built: ProjectDir) -> None:
    text = target("../out/same.jsonl") + textwrap.indent(
        "out2:\n  kind: export\n  input: src\n  format: jsonl\n  path: ../out/same.jsonl\n", "  "
    )
    built.gen({"targets/base.yaml": text})
    res = built.build("targets/base.yaml", expect=2)
    assert "is written by export 'base#out" in res.stderr


def test_inside_the_project_still_builds(built: ProjectDir) -> None:
    built.gen({"targets/base.yaml": target("../out/deeper/ok2.jsonl")})
    built.build("targets/base.yaml")
    assert len(built.read("out/deeper/ok2.jsonl").splitlines()) == 2


def test_library_build_with_root_checks_against_that_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build(root=...)`` from another folder: the export is checked against the build's
    project (at load once the builder passes its root, else before the export writes)."""
    from fdbuild.errors import SpecError
    from fdbuild.execute.build import build

    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "targets").mkdir()
    (proj / "data" / "small.jsonl").write_text(SOURCE)
    (proj / "targets" / "base.yaml").write_text(target("../../beside.jsonl"))
    monkeypatch.chdir(tmp_path)  # a folder holding the project, itself no project
    with pytest.raises(SpecError, match="is outside the project folder"):
        build([proj / "targets" / "base.yaml"], root=proj)
    assert not (tmp_path / "beside.jsonl").exists()
    assert not (proj / "fdbuild.lock").exists()
