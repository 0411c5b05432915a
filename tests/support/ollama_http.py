"""The HTTP side of the fake Ollama server: routing, request bodies, replies and streams.

The handler reads and changes the ``FakeOllama`` it serves (its lock, models and
counters) as a part of it; it decides only what goes on the wire.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.support.ollama_faults import BUSY_MESSAGE, CRASH_MESSAGE, MIDSTREAM_MESSAGE
from tests.support.ollama_requests import HttpError, openai_to_native
from tests.support.ollama_shapes import (
    details,
    model_entry,
    native_chunks,
    native_single,
    openai_chunks,
    openai_completion,
    openai_error_body,
    openai_model_entry,
)

if TYPE_CHECKING:
    from tests.support.ollama_server import FakeOllama


class HttpServer(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can cut keep-alive clients off."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeouts, the "hang" fault) is routine here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer
    disable_nagle_algorithm = True  # small NDJSON chunks would otherwise wait ~40 ms each

    def version_string(self) -> str:
        return "FakeOllama"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output should show the test, not an access log."""

    # -- routing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        body = self._read_body() if method == "POST" else b""
        if not path.startswith("/_fake/"):
            fake._log(method, path)
        routes: dict[tuple[str, str], Callable[[bytes], None]] = {
            ("GET", "/"): lambda _: self._send_text(200, "Ollama is running"),
            ("GET", "/api/version"): lambda _: self._send_json(200, {"version": fake.version}),
            ("GET", "/api/tags"): lambda _: self._send_json(200, self._tags()),
            ("GET", "/api/ps"): lambda _: self._send_json(200, self._ps()),
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): lambda b: self._native(b, "chat"),
            ("POST", "/api/generate"): lambda b: self._native(b, "generate"),
            ("GET", "/v1/models"): lambda _: self._send_json(200, self._openai_models()),
            ("POST", "/v1/chat/completions"): self._openai_chat,
            ("GET", "/_fake/stats"): lambda _: self._send_json(200, fake.stats()),
            ("POST", "/_fake/config"): self._fake_config,
            ("POST", "/_fake/reset"): self._fake_reset,
        }
        route = routes.get(("GET" if method == "HEAD" else method, path))
        if route is None and method == "GET" and path.startswith("/v1/models/"):
            route = lambda _: self._openai_model(path[len("/v1/models/") :])  # noqa: E731
        if route is None:
            self._send_text(404, "404 page not found")
            return
        route(body)

    # -- plain endpoints

    def _tags(self) -> dict[str, Any]:
        with self.server.fake._lock:
            return {"models": [model_entry(m) for m in self.server.fake._models.values()]}

    def _ps(self) -> dict[str, Any]:
        fake = self.server.fake
        with fake._lock:
            loaded = [
                (replace(fake._models[t]), at)
                for t, at in fake._loaded.items()
                if t in fake._models
            ]
        entries = []
        for model, at in loaded:
            expires = datetime.fromtimestamp(at, timezone.utc) + timedelta(minutes=5)
            entry = model_entry(model)
            del entry["modified_at"]
            entry.update(expires_at=expires.isoformat(), size_vram=model.size, context_length=4096)
            entries.append(entry)
        return {"models": entries}

    def _show(self, raw: bytes) -> None:
        body = self._parse_json(raw)
        if body is None:
            return
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            self._send_json(400, {"error": "model is required"})
            return
        model = self.server.fake._find_model(name)
        if model is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        blob = hashlib.sha256(model.digest.encode()).hexdigest()
        self._send_json(
            200,
            {
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM /root/.ollama/models/blobs/sha256-{blob}\n',
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": details(model),
                "model_info": {
                    "general.architecture": model.family,
                    "general.parameter_count": model.size,
                    f"{model.family}.context_length": 32768,
                },
                "capabilities": ["completion", *(["thinking"] if model.thinking else [])],
                "modified_at": model.modified_at.isoformat(),
            },
        )

    def _fake_config(self, raw: bytes) -> None:
        body = self._parse_json(raw)
        if body is None:
            return
        try:
            self.server.fake.configure(body)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, self.server.fake.stats())

    def _fake_reset(self, _: bytes) -> None:
        self.server.fake.reset()
        self._send_json(200, self.server.fake.stats())

    # -- /api/chat and /api/generate

    def _native(self, raw: bytes, endpoint: str) -> None:
        fake = self.server.fake
        body = self._decode(raw)
        with fake._generation(
            body if isinstance(body, dict) else {"_raw": raw.decode(errors="replace")}
        ) as fault:
            if not isinstance(body, dict):
                self._send_json(400, {"error": body or "missing request body"})
                return
            try:
                call = fake._prepare(endpoint, body)
            except HttpError as exc:
                self._send_json(exc.status, {"error": exc.message})
                return
            if not self._survive_fault(fault, lambda s, m: self._send_json(s, {"error": m})):
                return
            try:
                result = fake._run(call)
            except HttpError as exc:
                self._send_json(exc.status, {"error": exc.message})
                return
            if fake._sleep(fake._latency()):
                self.close_connection = True
                return
            chunks = native_chunks(call, result)
            if fault == "midstream":
                if call.stream:
                    partial = [c for c in chunks if not c["done"]][:2]
                    self._stream("application/x-ndjson", [*partial, {"error": MIDSTREAM_MESSAGE}])
                else:  # non-streaming handlers turn a runner error into a 500 (routes.go)
                    self._send_json(500, {"error": MIDSTREAM_MESSAGE})
            elif call.stream:
                self._stream("application/x-ndjson", chunks)
            else:
                self._send_json(200, native_single(call, result))

    def _survive_fault(self, fault: str | None, send_error: Callable[[int, str], None]) -> bool:
        """Apply a fault that ends the request before generation; False if it did."""
        fake = self.server.fake
        if fault == "500":
            send_error(500, CRASH_MESSAGE)
        elif fault == "503":
            send_error(503, BUSY_MESSAGE)
        elif fault == "disconnect":
            self.close_connection = True  # no bytes at all: the client sees EOF
        elif fault == "hang" and fake._sleep(fake.hang_s):
            self.close_connection = True
        else:
            return True
        return False

    # -- OpenAI-compatible

    def _openai_models(self) -> dict[str, Any]:
        with self.server.fake._lock:
            data = [openai_model_entry(m) for m in self.server.fake._models.values()]
        return {"object": "list", "data": data}

    def _openai_model(self, name: str) -> None:
        model = self.server.fake._find_model(name)
        if model is None:
            self._send_openai_error(404, f"model '{name}' not found")
        else:
            self._send_json(200, openai_model_entry(model))

    def _openai_chat(self, raw: bytes) -> None:
        fake = self.server.fake
        body = self._decode(raw)
        with fake._generation(
            body if isinstance(body, dict) else {"_raw": raw.decode(errors="replace")}
        ) as fault:
            if not isinstance(body, dict):
                self._send_openai_error(400, body or "missing request body")
                return
            try:
                call = fake._prepare("openai", openai_to_native(body))
                result = (
                    fake._run(call) if self._survive_fault(fault, self._send_openai_error) else None
                )
            except HttpError as exc:
                self._send_openai_error(exc.status, exc.message)
                return
            if result is None:
                return
            if fake._sleep(fake._latency()):
                self.close_connection = True
                return
            completion_id = f"chatcmpl-{fake.generation_count % 999}"
            if not call.stream:
                if fault == "midstream":
                    self._send_openai_error(500, MIDSTREAM_MESSAGE)
                else:
                    self._send_json(200, openai_completion(completion_id, call, result))
                return
            events = openai_chunks(completion_id, call, result, body)
            if fault == "midstream":
                error = {"error": openai_error_body(500, MIDSTREAM_MESSAGE)["error"]}
                events = [
                    e for e in events if e["choices"] and not e["choices"][0]["finish_reason"]
                ]
                events = [*events[:2], error]
            else:
                events.append("[DONE]")
            self._stream("text/event-stream", events, sse=True)

    def _send_openai_error(self, status: int, message: str) -> None:
        self._send_json(status, openai_error_body(status, message))

    # -- I/O

    def _read_body(self) -> bytes:
        """Read the whole body so the next request on this keep-alive socket parses."""
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        return b""

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any] | str:
        """The JSON object, or the error text a bad body gets (as gin's binding says)."""
        if not raw.strip():
            return "missing request body"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            return f"invalid character in request body: {exc}"
        if not isinstance(value, dict):
            return "json: cannot unmarshal request body into a request object"
        return value

    def _parse_json(self, raw: bytes) -> dict[str, Any] | None:
        value = self._decode(raw)
        if isinstance(value, str):
            self._send_json(400, {"error": value})
            return None
        return value

    def _send_json(self, status: int, obj: Any) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _send_text(self, status: int, text: str) -> None:
        self._send_bytes(status, text.encode(), "text/plain; charset=utf-8")

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, content_type: str, items: list[Any], *, sse: bool = False) -> None:
        """Chunked transfer: one NDJSON line (or one SSE event) per chunk."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        if sse:
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for item in items:
            text = item if isinstance(item, str) else json.dumps(item)
            data = f"data: {text}\n\n".encode() if sse else (text + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")
