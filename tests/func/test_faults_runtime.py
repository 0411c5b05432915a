"""Faults while a build runs: a reply that is not valid Unicode, a teacher whose digest
changes mid-build, SIGTERM, and a teacher that goes down (the circuit breaker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fdbuild.execute.teachers import BREAKER_THRESHOLD
from fdbuild.store.rowcache import GEN, MEMO, RowCache
from tests.support.ollama_server import DEFAULT_DIGEST, default_responder
from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
EXPORT = "targets/out/answers.jsonl"
FDBUILD = [sys.executable, "-m", "fdbuild"]
REPO = Path(__file__).resolve().parents[2]
NEW_DIGEST = "1" * 64


def setup(project: ProjectDir, url: str, rows: int = 30, **kw: Any) -> None:
    project.gen(
        {"targets/data/questions.jsonl": questions_jsonl(rows), TARGET: basic_target(url, **kw)}
    )


def failures(project: ProjectDir) -> list[dict[str, Any]]:
    """The latest run's failures (run ids of one second do not sort by time)."""
    return project.cli("show", "@", "--json").json()["failures"]


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


# ------------------------------------------------------------------- invalid Unicode


def surrogate_for(bad: set[str]):
    """The default replies, except a lone surrogate for questions containing ``bad``."""

    def respond(request: dict[str, Any]) -> Any:
        prompt = request["messages"][-1]["content"]
        if any(f"What is {q} plus" in prompt for q in bad):
            return "SELECT \ud800 FROM t"  # sent on the wire as the JSON escape "\ud800"
        return default_responder(request)

    return respond


@pytest.mark.parametrize("stream", [True, False], ids=["ndjson", "json"])
def test_the_test_server_sends_a_lone_surrogate_as_a_json_escape(
    make_ollama_server, stream: bool
) -> None:
    """What the build must survive is really on the wire: ``"\\ud800"`` in the JSON."""
    import urllib.request

    server = make_ollama_server(responder=surrogate_for({"1"}))
    body = {
        "model": "qwen2.5-coder:7b",
        "messages": [{"role": "user", "content": "What is 1 plus 1?"}],
        "stream": stream,
    }
    request = urllib.request.Request(
        server.url + "/api/chat", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    assert b"\\ud800" in raw
    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    text = "".join(line["message"]["content"] for line in lines)
    assert "\ud800" in text  # decodes to a str no UTF-8 writer accepts
    with pytest.raises(UnicodeEncodeError):
        text.encode("utf-8")


def test_a_reply_with_a_lone_surrogate_is_a_failed_row_and_never_cached(
    project: ProjectDir, make_ollama_server
) -> None:
    server = make_ollama_server(responder=surrogate_for({"3", "7"}))
    setup(project, server.url)
    res = project.build(TARGET, "--json", expect=3)
    assert "Traceback" not in res.stderr
    assert res.json()["failed"] == 4  # 2 questions x n=2
    bad = failures(project)
    assert {f["reason"] for f in bad} == {"invalid_text"}
    assert {f["row_id"].split("/")[0] for f in bad} == {"t003", "t007"}
    assert all(f["attempts"] == 1 for f in bad)  # not retried: the same request, same reply
    assert len(project.read(EXPORT).splitlines()) == 56
    asked = server.generation_count
    assert asked == 60

    # Retried on the next build like any failure; once the teacher answers, it heals.
    server.responder = None
    res = project.build(TARGET, "--json")
    assert server.generation_count - asked == 4
    assert len(project.read(EXPORT).splitlines()) == 60


def test_a_cached_reply_with_a_lone_surrogate_does_not_crash_the_build(
    project: ProjectDir, ollama_server
) -> None:
    """What an older fdbuild may have cached: a plain record holding a lone surrogate."""
    setup(project, ollama_server.url)
    project.build(TARGET)
    cache = RowCache(project.root / ".fdbuild" / "cache")
    key = sorted(cache.keys(GEN))[0]
    for memo in list(cache.keys(MEMO)):
        cache.delete(MEMO, memo)
    cache._cache.set(GEN + key, {"text": "SELECT \ud800 FROM t", "done_reason": "stop"})
    cache.close()
    asked = ollama_server.generation_count

    first = project.build(TARGET, "--json")  # the bad record is a miss: asked again at once
    assert "Traceback" not in first.stderr
    assert "not valid Unicode" in first.stderr  # the store's warning names the record
    assert ollama_server.generation_count - asked == 1
    text = project.read(EXPORT)
    assert len(text.splitlines()) == 60 and "\\ud800" not in text


# ------------------------------------------------------------------- teacher identity


def test_a_digest_change_mid_build_discards_what_it_answered_and_exits_5(
    project: ProjectDir, make_ollama_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDBUILD_IDENTITY_CHECK_S", "0.2")
    server = make_ollama_server(latency_s=0.2)
    setup(project, server.url)

    def repull() -> None:
        wait_for(lambda: server.generation_count >= 12)
        server.set_digest("qwen2.5-coder:7b", NEW_DIGEST)  # `ollama pull` to new weights

    thread = threading.Thread(target=repull, daemon=True)
    thread.start()
    res = project.build(TARGET, expect=5)
    thread.join(timeout=5)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("fdbuild: error:")]
    assert len(errors) == 1, res.stderr
    assert "'main'" in errors[0] and "changed during the build" in errors[0]
    assert DEFAULT_DIGEST in errors[0] and NEW_DIGEST in errors[0]
    assert server.generation_count < 60  # it stopped asking
    assert not (project.root / "fdbuild.lock").exists()

    # Nothing the new weights answered is cached under the old digest: with the old
    # weights back, the export is exactly a clean build's at the old digest.
    server.set_digest("qwen2.5-coder:7b", DEFAULT_DIGEST)
    server.latency_s = 0.0
    project.build(TARGET)
    clean = ProjectDir(tmp_path / "clean")
    clean.root.mkdir()
    reference = make_ollama_server()
    setup(clean, reference.url)
    clean.build(TARGET)
    assert project.read_bytes(EXPORT) == clean.read_bytes(EXPORT)

    # And the next build under the new digest asks for everything under its own keys.
    server.set_digest("qwen2.5-coder:7b", NEW_DIGEST)
    before = server.generation_count
    project.build(TARGET)
    assert server.generation_count - before == 60
    assert NEW_DIGEST in project.read("fdbuild.lock")


def test_a_digest_change_is_seen_by_the_last_check_too(
    project: ProjectDir, ollama_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With checks far apart, the check after the graph ran still catches the change."""
    monkeypatch.setenv("FDBUILD_IDENTITY_CHECK_S", "3600")
    setup(project, ollama_server.url)

    def respond(request: dict[str, Any]) -> Any:
        if len(ollama_server.generation_requests) == 50:
            ollama_server.set_digest("qwen2.5-coder:7b", NEW_DIGEST)
        return default_responder(request)

    ollama_server.responder = respond
    res = project.build(TARGET, expect=5)
    assert NEW_DIGEST in res.stderr
    ollama_server.responder = None
    ollama_server.set_digest("qwen2.5-coder:7b", DEFAULT_DIGEST)
    before = ollama_server.generation_count
    project.build(TARGET)
    # Every reply since the build's start was unconfirmed, so all were discarded.
    assert ollama_server.generation_count - before == 60


# ------------------------------------------------------------------- SIGTERM


def test_sigterm_stops_like_ctrl_c_and_keeps_finished_work(
    project: ProjectDir, ollama_server
) -> None:
    setup(project, ollama_server.url)
    ollama_server.latency_s = 0.15
    proc = subprocess.Popen(
        [*FDBUILD, "build", TARGET],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: ollama_server.generation_count >= 20)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not (project.root / "fdbuild.lock").exists()
    asked_before = ollama_server.generation_count
    ollama_server.latency_s = 0.0
    res = project.build(TARGET)
    assert "waiting" not in res.stderr  # the mutex was released
    asked_after = ollama_server.generation_count - asked_before
    assert 60 - asked_before <= asked_after <= 60 - asked_before + 4
    assert len(project.read(EXPORT).splitlines()) == 60


# ------------------------------------------------------------------- circuit breaker


@pytest.mark.timeout(120)
def test_a_teacher_down_mid_build_fails_the_rest_fast_with_one_message(
    project: ProjectDir, ollama_server
) -> None:
    setup(project, ollama_server.url, rows=100)  # 200 generations, concurrency 4, retries 4
    ollama_server.latency_s = 0.05

    def outage() -> None:
        wait_for(lambda: ollama_server.generation_count >= 20)
        ollama_server.stop()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    res = project.build(TARGET, "--json", expect=3)
    thread.join(timeout=5)
    summary = res.json()
    served = ollama_server.generation_count  # requests that reached the server
    attempts = summary["nodes"]["answers"]["teacher_calls"]
    # after the outage: at most the threshold plus one burst of in-flight requests
    assert attempts - served <= BREAKER_THRESHOLD + 4, (attempts, served)
    notes = [ln for ln in res.stderr.splitlines() if "sending it nothing more" in ln]
    assert len(notes) == 1, res.stderr
    assert "teacher_unavailable" in notes[0]
    rows = failures(project)
    assert len(rows) == summary["failed"] == 200 - summary["nodes"]["answers"]["computed"]
    assert sum(f["reason"] == "teacher_unavailable" for f in rows) >= len(rows) - 12
    assert res.stderr.count("teacher_unavailable") == 1  # one line, not one per row

    # Retried next build, with the teacher back.
    ollama_server.start()
    before = ollama_server.generation_count
    project.build(TARGET)
    assert ollama_server.generation_count - before == summary["failed"]


def test_a_judge_reply_with_a_lone_surrogate_is_a_failed_row(
    project: ProjectDir, make_ollama_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.recipes import recipe_project, recipe_responder

    poisoned: set[str] = set()
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Any:
        reply = recipe_responder(request)
        prompt = request["messages"][-1]["content"]
        with lock:  # the first judge prompt, every time it is asked
            if "Candidate SQL:" in prompt and (not poisoned or prompt in poisoned):
                poisoned.add(prompt)
                return "Score: 9/10 \udc80"
        return reply

    server = make_ollama_server(responder=respond)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    (target,) = recipe_project(project, ["text2sql_candidates"])
    res = project.build(target, "--json", expect=3)
    assert "Traceback" not in res.stderr
    rows = failures(project)
    assert rows and {(f["node"].split("#")[-1], f["reason"]) for f in rows} == {
        ("judged", "invalid_text")
    }
    assert res.json()["failed"] == len(rows)  # the candidates judged with that one prompt

    server.responder = recipe_responder
    before = server.generation_count
    project.build(target, "--json")
    assert 1 <= server.generation_count - before <= len(rows)  # only that judge reply
