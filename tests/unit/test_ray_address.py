"""A ``--ray-address`` nobody listens on is one clear error at once (``ray.init`` would
retry for minutes); the forms Ray resolves itself are left to it."""

from __future__ import annotations

import socket

import pytest

from fdbuild.errors import FdbuildError
from fdbuild.executors.ray_ import _reachable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nobody_listening_is_one_clear_error() -> None:
    port = _closed_port()
    with pytest.raises(FdbuildError, match=f"nothing answers at --ray-address 127.0.0.1:{port}"):
        _reachable(f"127.0.0.1:{port}")


def test_a_listener_passes_and_other_forms_are_rays() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        _reachable(f"127.0.0.1:{sock.getsockname()[1]}")
    for address in (None, "auto", "ray://127.0.0.1:1"):
        _reachable(address)
