"""``fdbuild doctor``: what it checks, what it reports, what --repair does."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.func.test_store_integrity import (
    CHANGED_KEEP,
    EXPORT,
    TARGET,
    calls,
    generate_artifact,
    overwrite_middle,
    setup,
)
from tests.support.project import ProjectDir


def built(project: ProjectDir, server) -> ProjectDir:
    setup(project, server)
    project.build(TARGET)
    return project


def edit_one_reply(project: ProjectDir) -> str:
    db = sqlite3.connect(project.root / ".fdbuild/cache/cache.db")
    key, value = db.execute("SELECT key, value FROM Cache WHERE key LIKE 'g:%' LIMIT 1").fetchone()
    at = value.index(b"text") + 10
    edited = value[:at] + bytes(reversed(value[at : at + 4])) + value[at + 4 :]
    db.execute("UPDATE Cache SET value = ? WHERE key = ?", (edited, key))
    db.commit()
    db.close()
    return key


def test_clean_project_exits_0(project: ProjectDir, ollama_server) -> None:
    built(project, ollama_server)
    res = project.cli("doctor")
    assert "everything verifies" in res.stdout
    assert "4 artifact(s)" in res.stdout and "1 run record(s)" in res.stdout
    report = project.cli("doctor", "--json").json()
    assert report["clean"] and report["findings"] == []
    assert report["checked"]["cache_records"] > 60


def test_doctor_names_every_bad_file_and_repair_heals(project: ProjectDir, ollama_server) -> None:
    built(project, ollama_server)
    first = project.read(EXPORT)
    artifact = generate_artifact(project)
    overwrite_middle(artifact)
    key = edit_one_reply(project)
    run = next((project.root / ".fdbuild/runs").glob("*.json"))
    run.write_text('{"run_id": ', encoding="utf-8")
    lock_before = project.read("fdbuild.lock")

    res = project.cli("doctor", "--json", expect=1)
    found = {(f["kind"], f["key"] or Path(f["path"]).name) for f in res.json()["findings"]}
    assert found == {("artifact", artifact.name), ("record", key), ("run", run.name)}
    assert not any(f["repaired"] for f in res.json()["findings"])
    assert artifact.exists() and run.exists()  # checking alone changes nothing

    res = project.cli("doctor", "--repair")
    assert res.stdout.count("repaired:") == 3
    assert not artifact.exists() and not run.exists()
    moved = sorted(p.name for p in (project.root / ".fdbuild/quarantine").iterdir())
    assert any(artifact.name in m for m in moved) and any(run.name in m for m in moved)
    assert sum(m.endswith(".why.json") for m in moved) == 2
    assert project.read("fdbuild.lock") == lock_before

    setup(project, ollama_server, keep=CHANGED_KEEP)
    n, _ = calls(ollama_server, lambda: project.build(TARGET))
    assert n == 1  # the deleted reply; the artifact came back from the cache
    setup(project, ollama_server)
    project.build(TARGET)
    assert project.read(EXPORT) == first
    assert project.cli("doctor", "--json").json()["clean"]


def test_bad_lock_is_reported_and_never_touched(project: ProjectDir, ollama_server) -> None:
    built(project, ollama_server)
    (project.root / "fdbuild.lock").write_text("schema: 1\ntargets: [\n", encoding="utf-8")
    for args in (("doctor",), ("doctor", "--repair")):
        res = project.cli(*args, expect=1)
        assert "fdbuild.lock" in res.stdout and "version control" in res.stdout
    assert project.read("fdbuild.lock") == "schema: 1\ntargets: [\n"


def test_legacy_state_is_verified_by_content_and_upgraded(
    project: ProjectDir, ollama_server
) -> None:
    built(project, ollama_server)
    for side in (project.root / ".fdbuild/objects").glob("*/*.sum"):
        side.unlink()
    import diskcache

    from fdbuild.store.records import decode

    legacy = diskcache.Cache(str(project.root / ".fdbuild/cache"))
    key = next(k for k in legacy.iterkeys() if k.startswith("g:"))
    legacy.set(key, decode(key, legacy.get(key)))  # as written before checksums: a plain dict
    legacy.close()
    report = project.cli("doctor", "--json").json()
    assert report["clean"]
    assert report["checked"]["legacy_artifacts"] == 4 and report["checked"]["legacy_records"] == 1
    report = project.cli("doctor", "--repair", "--json").json()
    assert report["fixed"] == {"artifact_digests_written": 4, "record_checksums_written": 1}
    report = project.cli("doctor", "--json").json()
    assert report["checked"]["legacy_artifacts"] == 0 and report["checked"]["legacy_records"] == 0


def test_doctor_on_an_empty_folder(project: ProjectDir) -> None:
    res = project.cli("doctor")
    assert "everything verifies" in res.stdout
    assert json.loads(project.cli("doctor", "--json").stdout)["clean"]


def test_doctor_checks_the_kept_copies_of_lock_entries(project: ProjectDir, ollama_server) -> None:
    """``.fdbuild/runs/from-lock/`` holds copies of lock entries (a fresh clone's runs):
    a garbled one is named and quarantined like any run record."""
    built(project, ollama_server)
    kept = project.root / ".fdbuild/runs/from-lock"
    kept.mkdir(parents=True, exist_ok=True)
    bad = kept / "20260101T000000Z-abcdef.json"
    bad.write_text('{"run_id": 3', encoding="utf-8")
    res = project.cli("doctor", "--json", expect=1)
    assert [Path(f["path"]).name for f in res.json()["findings"]] == [bad.name]
    assert res.json()["checked"]["runs"] == 2
    project.cli("doctor", "--repair", expect=0)
    assert not bad.exists()
    assert "everything verifies" in project.cli("doctor").stdout
