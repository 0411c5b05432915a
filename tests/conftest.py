"""Shared fixtures: the Ollama-protocol test server, a project builder, env isolation."""

from __future__ import annotations

import pytest

from tests.support.fixtures import *  # noqa: F403
from tests.support.project import project  # noqa: F401


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's Ollama host or caches."""
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.setenv("FDBUILD_CACHE_DIR", str(tmp_path_factory.mktemp("fdcache")))
