"""The engine's output, pinned: every repository target built against the test server gives
exactly the node and export digests that the sequential walk (the engine before the
pipelined one, commit c6d37b9) produced. The pipelined engine must reproduce them byte for
byte, however it schedules the work.

To re-record after a change that is *meant* to change outputs (a key-schema bump, a new
export column): ``FDBUILD_RECORD_DIGESTS=1 pytest tests/func/test_engine_digests.py`` and
say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fdbuild.keys import file_digest
from tests.func.test_recipes import served_by_ollama
from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir
from tests.support.recipes import recipe_project, recipe_responder

GOLDEN = Path(__file__).parent / "data" / "engine_digests.json"


@pytest.fixture
def server(make_ollama_server, monkeypatch):
    srv = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=recipe_responder)
    monkeypatch.setenv("OLLAMA_HOST", srv.url)
    return srv


def digests(project: ProjectDir) -> dict[str, Any]:
    """Every node's output digest and row count from the lock, and every exported file's
    content digest (manifests and cards included)."""
    lock = YAML(typ="safe").load((project.root / "fdbuild.lock").read_text())
    nodes = {
        f"{tname}#{name}": [node["output"]["digest"], node["output"]["rows"]]
        for tname, target in sorted(lock["targets"].items())
        for name, node in sorted(target["nodes"].items())
    }
    out = project.root / "out"
    files = {
        str(p.relative_to(out)): file_digest(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and "report" not in p.name
    }
    return {"nodes": nodes, "exports": files}


def build_all(project: ProjectDir, *args: str) -> dict[str, Any]:
    targets = [t for t in recipe_project(project) if served_by_ollama(project.root / t)]
    project.build(*targets, *args)
    return digests(project)


def test_every_target_reproduces_the_recorded_digests(project: ProjectDir, server) -> None:
    got = build_all(project)
    if os.environ.get("FDBUILD_RECORD_DIGESTS"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got["nodes"] == want["nodes"]
    assert got["exports"] == want["exports"]
