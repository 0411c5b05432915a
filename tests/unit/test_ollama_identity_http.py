"""The Ollama identity lookup over plain HTTP (``/api/tags``, ``/api/version``).

The test server in tests/support serves a well-behaved Ollama; these tests stand up a
stub that answers what a broken server, a proxy or the wrong program would, and check
that every failure is classified (unreachable, refused, not JSON, not a listing, no
digest) instead of escaping as a traceback. They also check that resolving imports
no client library: that is what keeps a no-op build cheap.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fdbuild.errors import ModelNotFound, ProviderError, ProviderUnavailable
from fdbuild.providers.base import TeacherIdentity
from fdbuild.providers.ollama import EMBEDDED_HINT, OllamaProvider
from fdbuild.spec.model import TargetFile
from tests.support.fixtures import OLLAMA_DIGEST, OLLAMA_MODEL

REPO = Path(__file__).resolve().parents[2]
LISTING = {"models": [{"model": OLLAMA_MODEL, "name": OLLAMA_MODEL, "digest": OLLAMA_DIGEST}]}
# (status, headers, body), or one of the raw behaviours of ``Stub``: "close" (no status
# line), "chunked" / "eof" (the listing, chunked / ended by closing), "hang", "garbage"
Reply = tuple[int, dict[str, str], bytes] | str


def json_reply(data: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


class Stub:
    """A one-thread HTTP server answering canned replies by path; records requests."""

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies = replies
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()  # ends a "hang"
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                stub.requests.append((self.path, dict(self.headers)))
                path = self.path.split("://", 1)[-1].partition("/")[2]  # a proxy's absolute form
                reply = stub.replies.get("/" + path, json_reply({"error": "not found"}, 404))
                if reply == "close":
                    self.close_connection = True
                    return  # no status line at all
                if isinstance(reply, str):
                    self.raw(reply)
                    return
                status, headers, body = reply
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def raw(self, how: str) -> None:
                self.close_connection = True
                body = json.dumps(LISTING).encode()
                if how == "hang":
                    stub.release.wait(10)
                elif how == "garbage":
                    self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                elif how == "eof":  # HTTP/1.0 style: no length, the body ends with the socket
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
                    self.wfile.write(body)
                elif how == "chunked":  # as Go's net/http sends a large listing
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    for i in range(0, len(body), 7):
                        part = body[i : i + 7]
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Any]:
    stubs: list[Stub] = []

    def make(replies: dict[str, Reply]) -> Stub:
        stubs.append(Stub(replies))
        return stubs[-1]

    yield make
    for s in stubs:
        s.stop()


def resolve(url: str, model: str = OLLAMA_MODEL, timeout_s: float = 10) -> TeacherIdentity:
    async def run() -> TeacherIdentity:
        provider = OllamaProvider(model, host=url, timeout_s=timeout_s)
        try:
            return await provider.resolve()
        finally:
            await provider.aclose()

    return asyncio.run(run())


def test_a_listing_and_a_version_make_the_identity(stub):
    server = stub(
        {"/api/tags": json_reply(LISTING), "/api/version": json_reply({"version": "0.13.1"})}
    )
    assert resolve(server.url) == TeacherIdentity("ollama", OLLAMA_MODEL, OLLAMA_DIGEST, "0.13.1")
    assert [path for path, _ in server.requests] == ["/api/tags", "/api/version"]
    headers = server.requests[0][1]
    assert headers["Accept"] == "application/json" and headers["User-Agent"].startswith("fdbuild/")
    assert "Authorization" not in headers


def test_the_api_key_is_sent_as_the_client_would(stub, monkeypatch):
    monkeypatch.setenv("OLLAMA_API_KEY", "k-123")
    server = stub({"/api/tags": json_reply(LISTING)})
    resolve(server.url)
    assert server.requests[0][1]["Authorization"] == "Bearer k-123"


def test_sha256_prefix_and_case_are_dropped_and_a_missing_version_is_none(stub):
    listing = {"models": [{"model": OLLAMA_MODEL, "digest": "sha256:" + "AB" * 32}]}
    server = stub({"/api/tags": json_reply(listing), "/api/version": "close"})
    identity = resolve(server.url)
    assert (identity.digest, identity.server_version) == ("ab" * 32, None)


@pytest.mark.parametrize("how", ["chunked", "eof"])
def test_chunked_and_unsized_bodies_are_read_whole(stub, how):
    server = stub({"/api/tags": how})
    assert resolve(server.url).digest == OLLAMA_DIGEST


def test_a_server_that_never_answers_is_unreachable_after_the_timeout(stub):
    server = stub({"/api/tags": "hang"})
    t0 = time.monotonic()
    with pytest.raises(ProviderUnavailable) as err:
        resolve(server.url, timeout_s=0.3)
    assert "TimeoutError" in str(err.value) and time.monotonic() - t0 < 5


def test_the_lookup_is_bounded_apart_from_the_long_generation_timeout(stub, monkeypatch):
    """A teacher's timeout_s (240 s by default) bounds a generation; the identity lookup a
    no-op waits on has its own, shorter bound."""
    import fdbuild.providers.ollama as ollama_provider

    monkeypatch.setattr(ollama_provider, "IDENTITY_TIMEOUT_S", 0.3)
    server = stub({"/api/tags": "hang"})
    t0 = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        resolve(server.url, timeout_s=240)
    assert time.monotonic() - t0 < 5


def test_a_peer_that_is_not_http_is_unreachable(stub):
    server = stub({"/api/tags": "garbage"})
    with pytest.raises(ProviderUnavailable) as err:
        resolve(server.url)
    assert "not an HTTP reply" in str(err.value)


def test_a_proxy_from_the_environment_is_used(stub, monkeypatch):
    """With ``http_proxy`` set the lookup goes through urllib, which honours it: the stub
    plays the proxy and sees the absolute URL a proxy gets."""
    proxy = stub({"/api/tags": json_reply(LISTING)})
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert resolve("http://ollama.invalid:11434").digest == OLLAMA_DIGEST
    assert proxy.requests[0][0] == "http://ollama.invalid:11434/api/tags"
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")  # a proxy that is down
    with pytest.raises(ProviderUnavailable) as err:
        resolve("http://ollama.invalid:11434")
    assert "ConnectionRefusedError" in str(err.value)


def test_redirects_are_followed(stub):
    server = stub(
        {
            "/api/tags": (307, {"Location": "/moved/api/tags"}, b""),
            "/moved/api/tags": json_reply(LISTING),
        }
    )
    assert resolve(server.url).digest == OLLAMA_DIGEST


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (
            json_reply({"error": "runner crashed"}, 500),
            ProviderUnavailable,
            "HTTP 500: runner crashed",
        ),
        ((503, {}, b"<html>busy</html>"), ProviderUnavailable, "HTTP 503: <html>busy</html>"),
        (json_reply({"error": "forbidden"}, 403), ProviderError, "HTTP 403: forbidden"),
        ((200, {}, b"<html>login</html>"), ProviderError, "not JSON"),
        ((200, {}, b"\xff\xfe"), ProviderError, "not JSON"),
        (json_reply({"data": []}), ProviderError, "not a model listing"),
        (json_reply({"models": ["qwen"]}), ProviderError, "not a model listing"),
        (json_reply([1, 2]), ProviderError, "not a model listing"),
        (json_reply({"models": [{"model": OLLAMA_MODEL}]}), ProviderError, "without a digest"),
        (
            json_reply({"models": [{"model": OLLAMA_MODEL, "digest": 7}]}),
            ProviderError,
            "without a digest",
        ),
        ("close", ProviderUnavailable, "cannot reach the Ollama server"),
    ],
)
def test_every_bad_answer_is_classified(stub, reply, error, words):
    server = stub({"/api/tags": reply})
    with pytest.raises(error) as err:
        resolve(server.url)
    assert words in str(err.value) and server.url in str(err.value)
    if error is ProviderError:
        assert not isinstance(err.value, ProviderUnavailable)


def test_a_model_not_listed_says_what_to_pull(stub):
    listing = {"models": [{"model": "llama3:latest", "digest": "1" * 64}, {"name": "nameless"}]}
    server = stub({"/api/tags": json_reply(listing)})
    with pytest.raises(ModelNotFound) as err:
        resolve(server.url, model="qwen")
    assert "`ollama pull qwen:latest`" in str(err.value)
    assert "models available: llama3:latest)" in str(err.value)


def test_unreachable_names_the_embedded_teacher_with_keys_that_load():
    with pytest.raises(ProviderUnavailable) as err:
        resolve("http://127.0.0.1:1")
    message = str(err.value)
    assert "ConnectionRefusedError" in message and EMBEDDED_HINT in message
    # The hint's --set values, applied to an Ollama teacher as targets write one, load.
    teacher: dict[str, Any] = {"model": OLLAMA_MODEL, "concurrency": 8, "timeout_s": 240}
    words = shlex.split(EMBEDDED_HINT.split(": ", 1)[1].split(" (see", 1)[0].replace("`", ""))
    sets = [w for w in words if w != "--set"]
    assert len(sets) == 3
    for item in sets:
        path, _, value = item.partition("=")
        assert path.startswith("teachers.<name>.")
        teacher[path.rsplit(".", 1)[1]] = int(value) if value.isdigit() else value
    spec = TargetFile.model_validate(
        {"fdbuild": 1, "teachers": {"main": teacher}, "nodes": {}}
    ).teachers["main"]
    assert (spec.provider, spec.model, spec.concurrency) == ("llamacpp", "smollm2-135m", 1)


def test_resolving_imports_no_client_library(ollama_server):
    """A no-op build resolves every teacher; the client (ollama, httpx, rich, click) is
    imported only by the first generation, and without a proxy not even urllib is."""
    code = (
        "import asyncio, sys\n"
        "from fdbuild.providers.ollama import OllamaProvider\n"
        f"p = OllamaProvider({OLLAMA_MODEL!r}, host={ollama_server.url!r})\n"
        "print(asyncio.run(p.resolve()).digest)\n"
        "asyncio.run(p.aclose())\n"
        "heavy = ('ollama', 'httpx', 'rich', 'click', 'urllib.request', 'http.client')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == [OLLAMA_DIGEST, "[]"]
