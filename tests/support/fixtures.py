"""Pytest fixtures for the Ollama-protocol test server; star-imported by tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL, FakeOllama

__all__ = ["OLLAMA_DIGEST", "OLLAMA_MODEL", "make_ollama_server", "ollama_server"]

OLLAMA_MODEL = DEFAULT_MODEL
OLLAMA_DIGEST = DEFAULT_DIGEST


@pytest.fixture
def make_ollama_server() -> Iterator[Callable[..., FakeOllama]]:
    """Start FakeOllama servers with any constructor arguments; all stop at teardown.

    ``make_ollama_server(models={"m:1b": digest}, thinking_models=["m:1b"])``; without
    ``models`` the server has ``qwen2.5-coder:7b`` at ``OLLAMA_DIGEST``.
    """
    servers: list[FakeOllama] = []

    def make(*args: Any, **kwargs: Any) -> FakeOllama:
        server = FakeOllama(*args, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def ollama_server(make_ollama_server: Callable[..., FakeOllama]) -> FakeOllama:
    """A started FakeOllama with ``qwen2.5-coder:7b`` at ``OLLAMA_DIGEST``, for one test."""
    return make_ollama_server({OLLAMA_MODEL: OLLAMA_DIGEST})
