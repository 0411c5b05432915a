"""Issue 9, items 1-2: damaged state is a miss, never an error and never a silent reuse.

Each case damages the state of a finished build the way the issue found it (a garbled or
truncated artifact, a same-length edit of a cached reply, a cache.db SQLite cannot open),
then checks that the next build heals from the row cache, says what was bad, and exports
exactly what a clean build exports."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
EXPORT = "targets/out/answers.jsonl"
CHANGED_KEEP = "{rule_reason: {in: [ok, too_long]}}"


def setup(project: ProjectDir, server, **kw) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(30),
            TARGET: basic_target(server.url, max_chars=150, **kw),
        }
    )


def generate_artifact(project: ProjectDir) -> Path:
    """The Parquet file of the generate node ``answers`` (it has a _key_answers column and
    no gate column)."""
    for path in sorted((project.root / ".fdbuild/objects").glob("*/*.parquet")):
        names = pq.read_schema(path).names
        if "_key_answers" in names and "_pass_checked" not in names:
            return path
    raise AssertionError("no generate artifact")


def overwrite_middle(path: Path, data: bytes = b"ABCD") -> None:
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + len(data)] = data
    path.write_bytes(bytes(raw))


def quarantined(project: ProjectDir) -> list[str]:
    folder = project.root / ".fdbuild/quarantine"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def clean_export(tmp_path: Path, server, keep: str) -> str:
    """The export of a build that never saw damage, with the same target."""
    clean = ProjectDir(tmp_path / "clean")
    clean.root.mkdir()
    setup(clean, server, keep=keep)
    clean.build(TARGET)
    return clean.read(EXPORT)


def calls(server, fn):
    before = server.generation_count
    result = fn()
    return server.generation_count - before, result


def test_garbled_artifact_is_quarantined_and_rebuilt_from_the_cache(
    project: ProjectDir, ollama_server, tmp_path: Path
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    artifact = generate_artifact(project)
    overwrite_middle(artifact)
    setup(project, ollama_server, keep=CHANGED_KEEP)  # the gate re-reads the answers

    n, res = calls(ollama_server, lambda: project.build(TARGET, "--json"))

    assert n == 0 and res.json()["teacher_calls"] == 0
    assert artifact.stem in res.stderr and "damaged" in res.stderr
    assert "Traceback" not in res.stderr
    assert any(artifact.stem in name and name.endswith(".parquet") for name in quarantined(project))
    assert project.read(EXPORT) == clean_export(tmp_path, ollama_server, CHANGED_KEEP)
    assert pq.read_table(artifact).num_rows == 60  # rebuilt in place
    note = next((project.root / ".fdbuild/quarantine").glob("*.why.json"))
    assert "bytes digest" in json.loads(note.read_text())["reason"]


def test_truncated_artifact_is_rebuilt_even_on_a_memo_hit(
    project: ProjectDir, ollama_server, tmp_path: Path
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    artifact = generate_artifact(project)
    artifact.write_bytes(artifact.read_bytes()[:100])
    (project.root / EXPORT).unlink()  # the export must be written again, from the artifact

    n, res = calls(ollama_server, lambda: project.build(TARGET))

    assert n == 0
    assert artifact.stem in res.stderr and "size" in res.stderr
    assert project.read(EXPORT) == clean_export(tmp_path, ollama_server, "{rule_reason: ok}")
    n, res = calls(ollama_server, lambda: project.build(TARGET))
    assert n == 0 and "damaged" not in res.stderr


def test_same_length_edit_of_a_cached_reply_is_recomputed(
    project: ProjectDir, ollama_server, tmp_path: Path
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    first = project.read(EXPORT)
    db = sqlite3.connect(project.root / ".fdbuild/cache/cache.db")
    key, value = db.execute("SELECT key, value FROM Cache WHERE key LIKE 'g:%' LIMIT 1").fetchone()
    word = value[value.index(b"text") + 10 : value.index(b"text") + 14]
    edited = value.replace(word, bytes(reversed(word)), 1)
    assert len(edited) == len(value) and edited != value
    db.execute("UPDATE Cache SET value = ? WHERE key = ?", (edited, key))
    db.commit()
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)  # SQLite sees nothing
    db.close()
    # a template edit and back would not re-read the cache: drop the artifacts instead
    shutil.rmtree(project.root / ".fdbuild/objects")

    n, res = calls(ollama_server, lambda: project.build(TARGET))

    assert n == 1  # exactly the damaged reply asked again
    assert key in res.stderr and "damaged" in res.stderr
    assert project.read(EXPORT) == first


def test_corrupt_cache_db_says_how_to_repair_and_the_repair_heals(
    project: ProjectDir, ollama_server, tmp_path: Path
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    first = project.read(EXPORT)
    cache = project.root / ".fdbuild/cache"
    (cache / "cache.db").write_bytes(b"this is not sqlite " * 500)
    for extra in cache.glob("cache.db-*"):
        extra.unlink()

    for command in (("build", TARGET), ("gc",)):
        res = project.cli(*command, expect=1)
        assert "Traceback" not in res.stderr
        assert res.stderr.count("fdbuild: error:") == 1
        assert ".fdbuild/cache/cache.db" in res.stderr
        assert "fdbuild doctor --repair" in res.stderr

    res = project.cli("doctor", expect=1)
    assert "cache.db" in res.stdout
    res = project.cli("doctor", "--repair")
    assert "asks the teachers again" in res.stdout
    assert any(name.endswith("-cache") for name in quarantined(project))

    n, _ = calls(ollama_server, lambda: project.build(TARGET))
    assert n == 60  # an empty cache: every reply asked again
    assert project.read(EXPORT) == first
    project.cli("doctor")


def test_gc_keeps_every_generation_while_a_kept_artifact_is_damaged(
    project: ProjectDir, ollama_server
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    artifact = generate_artifact(project)
    overwrite_middle(artifact)
    db = project.root / ".fdbuild/cache/cache.db"

    def generations() -> int:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM Cache WHERE key LIKE 'g:%'").fetchone()[0]
        finally:
            con.close()

    assert generations() == 60
    res = project.cli("gc")
    assert "Traceback" not in res.stderr
    assert artifact.stem in res.stderr and "doctor --repair" in res.stderr
    assert generations() == 60  # nothing deleted on the word of a garbled _key_ column

    project.cli("doctor", "--repair")
    setup(project, ollama_server, keep=CHANGED_KEEP)
    n, _ = calls(ollama_server, lambda: project.build(TARGET))
    assert n == 0  # healed from the cache gc kept
    res = project.cli("gc")
    assert "warning" not in res.stderr
    assert generations() == 60


def test_dry_run_reports_a_damaged_artifact_and_writes_nothing(
    project: ProjectDir, ollama_server
) -> None:
    setup(project, ollama_server)
    project.build(TARGET)
    artifact = generate_artifact(project)
    overwrite_middle(artifact)
    setup(project, ollama_server, keep=CHANGED_KEEP)
    before = artifact.read_bytes()
    res = project.build(TARGET, "--dry-run")
    assert artifact.stem in res.stderr and "dry run" in res.stderr
    assert artifact.read_bytes() == before and quarantined(project) == []
    assert "0 to compute" in res.stdout
