"""An Ollama-protocol test server: real HTTP on 127.0.0.1, talked to by the real client.

Tests fake the teacher at the seam (STYLE H7, H15): providers and end-to-end tests send
real HTTP to this server, so the ``ollama`` client's parsing, streaming and error paths
run exactly as they do against a live Ollama. Standard library only, so it needs no test
dependency and can also run as a subprocess for benchmarks::

    python -m tests.support.ollama_server --port 0 --latency 0.1 --jitter 0.5 \\
        --model qwen2.5-coder:7b=<64 hex digest>

which prints its URL on one line and serves until killed.

What it mimics (see /work/shared/reference/ollama.md):

* ``GET|HEAD /``, ``/api/version``, ``/api/tags``, ``POST /api/show``, ``GET /api/ps``;
* ``POST /api/chat`` and ``/api/generate``, NDJSON streaming by default (chunked),
  one JSON object with ``"stream": false``; the real error codes and messages;
* ``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON or SSE), OpenAI-shaped errors;
* ``/_fake/stats``, ``/_fake/config``, ``/_fake/reset`` to steer a server in another process.

Replies come from a pluggable ``responder``; the default one is a pure function of
(model, digest, messages, options, format), so a cache test can tell a re-generation from
a cache hit, and a digest or prompt change from neither.

The server is split by concept: ``ollama_models`` (installed models), ``ollama_faults``
(fault names and messages), ``ollama_requests`` (validation), ``ollama_replies`` (the
responder and what the server makes of a reply), ``ollama_shapes`` (the JSON on the wire)
and ``ollama_http`` (routing and streaming). This module holds the server's state and the
CLI, and re-exports the public names from one place.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from tests.support.ollama_faults import (
    BUSY_MESSAGE,
    CRASH_MESSAGE,
    FAULTS,
    MIDSTREAM_MESSAGE,
    check_fault,
)
from tests.support.ollama_http import HttpServer
from tests.support.ollama_models import (
    DEFAULT_DIGEST,
    DEFAULT_MODEL,
    Model,
    check_digest,
    model_family,
    normalize_model,
)
from tests.support.ollama_replies import Reply, Responder, Result, answer, default_responder
from tests.support.ollama_requests import Call, prepare_call

__all__ = [
    "BUSY_MESSAGE",
    "CRASH_MESSAGE",
    "DEFAULT_DIGEST",
    "DEFAULT_MODEL",
    "DEFAULT_VERSION",
    "FAULTS",
    "MIDSTREAM_MESSAGE",
    "FakeOllama",
    "Reply",
    "default_responder",
    "main",
    "normalize_model",
]

DEFAULT_VERSION = "0.32.15"


# ---------------------------------------------------------------------------- the fake


class FakeOllama:
    """An Ollama server for tests; every setting may change while it serves.

    ``models`` maps tag -> digest (64 lowercase hex, no ``sha256:``); ``thinking_models``
    names the tags with the ``thinking`` capability. Faults (``fail_every`` + ``fault``,
    ``enqueue_faults``, ``fail_models``) apply only to generation requests, after their
    validation: an unknown model still gets its 404. Latency (mean ``latency_s``, uniform
    within ``+/- jitter``) delays answered requests; "500", "503" and "disconnect" fail at
    once, "hang" waits ``hang_s`` and then answers. Counters are thread-safe.
    """

    def __init__(
        self,
        models: Mapping[str, str] | None = None,
        *,
        thinking_models: Iterable[str] = (),
        responder: Responder | None = None,
        supports_logprobs: bool = True,
        version: str = DEFAULT_VERSION,
        latency_s: float = 0.0,
        jitter: float = 0.0,
        fail_every: int | None = None,
        fault: str = "500",
        hang_s: float = 30.0,
        port: int = 0,
        rng_seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Model] = {}
        thinking = {normalize_model(t) for t in thinking_models}
        for tag, digest in (
            models if models is not None else {DEFAULT_MODEL: DEFAULT_DIGEST}
        ).items():
            self.add_model(tag, digest, thinking=normalize_model(tag) in thinking)
        self.responder = responder
        self.supports_logprobs = supports_logprobs
        self.version = version
        self.latency_s = latency_s
        self.jitter = jitter
        self.fail_every = fail_every
        self.fault = fault
        self.hang_s = hang_s
        self.fail_models: set[str] | dict[str, str] = set()
        self._rng = random.Random(rng_seed)
        self._port = port
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._fault_queue: deque[str | None] = deque()
        self._loaded: dict[str, float] = {}
        self.reset()

    # -- lifecycle

    def start(self) -> FakeOllama:
        """Bind (the same port again after a stop) and serve on a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = HttpServer(("127.0.0.1", self._port), self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-ollama-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections, so a stopped server is really down."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in latency or "hang"
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeOllama is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The value to give ``ollama.Client(host=...)`` or ``OLLAMA_HOST``."""
        return self.url

    # -- models

    def add_model(
        self,
        tag: str,
        digest: str,
        *,
        thinking: bool = False,
        family: str | None = None,
        parameter_size: str | None = None,
        quantization_level: str = "Q4_K_M",
        size: int | None = None,
    ) -> None:
        """Install a model, as ``ollama pull`` would (replaces one with the same tag)."""
        tag = normalize_model(tag)
        name, _, variant = tag.rpartition(":")
        size_match = re.fullmatch(r"(\d+(?:\.\d+)?)[bB]", variant)
        model = Model(
            tag=tag,
            digest=check_digest(digest),
            thinking=thinking,
            family=family or model_family(name),
            parameter_size=parameter_size or (f"{size_match[1]}B" if size_match else "1B"),
            quantization_level=quantization_level,
            size=size if size is not None else 1_000_000_000 + int(digest[:6], 16),
            modified_at=datetime.now(timezone.utc),
        )
        with self._lock:
            self._models[tag] = model

    def set_digest(self, tag: str, digest: str) -> None:
        """Re-pull a tag to new weights: same name, new manifest digest."""
        tag = normalize_model(tag)
        with self._lock:
            if tag not in self._models:
                raise KeyError(f"no model {tag!r} on this fake server")
            model = self._models[tag]
            model.digest = check_digest(digest)
            model.modified_at = datetime.now(timezone.utc)

    def remove_model(self, tag: str) -> None:
        with self._lock:
            self._models.pop(normalize_model(tag), None)
            self._loaded.pop(normalize_model(tag), None)

    @property
    def models(self) -> dict[str, str]:
        """A snapshot, tag -> digest."""
        with self._lock:
            return {tag: m.digest for tag, m in self._models.items()}

    def _find_model(self, name: str) -> Model | None:
        """A snapshot of the model, so a concurrent set_digest cannot tear a reply."""
        wanted = normalize_model(name).lower()
        with self._lock:
            for tag, model in self._models.items():
                if tag.lower() == wanted:
                    return replace(model)
        return None

    # -- faults

    @property
    def fault(self) -> str:
        return self._fault

    @fault.setter
    def fault(self, value: str) -> None:
        self._fault = check_fault(value)

    def enqueue_faults(self, faults: Iterable[str | None]) -> None:
        """The next generation requests fail in this order (``None``: that one succeeds)."""
        checked = [None if f is None else check_fault(f) for f in faults]
        with self._lock:
            self._fault_queue.extend(checked)

    def _next_fault(self, model: Any) -> str | None:
        """Called under the lock, once per generation request."""
        self._generation_counter += 1
        if self._fault_queue:
            return self._fault_queue.popleft()
        if isinstance(model, str) and model:
            tag = normalize_model(model)
            fail_models = self.fail_models
            if isinstance(fail_models, Mapping):
                by_tag = {normalize_model(k): v for k, v in fail_models.items()}
                if tag in by_tag:
                    return check_fault(by_tag[tag])
            elif tag in {normalize_model(m) for m in fail_models}:
                return self.fault
        every = self.fail_every
        if every and self._generation_counter % every == 0:
            return self.fault
        return None

    # -- counters

    def reset(self) -> None:
        """Forget the request history and pending queued faults; settings stay."""
        with self._lock:
            self._generation_requests: list[dict[str, Any]] = []
            self._request_log: list[tuple[str, str]] = []
            self._generation_counter = 0
            self._in_flight = getattr(self, "_in_flight", 0)
            self._max_in_flight = self._in_flight
            self._fault_queue.clear()

    @property
    def generation_requests(self) -> list[dict[str, Any]]:
        """Every body sent to /api/chat, /api/generate, /v1/chat/completions, failed or not."""
        with self._lock:
            return list(self._generation_requests)

    @property
    def generation_count(self) -> int:
        with self._lock:
            return len(self._generation_requests)

    @property
    def request_log(self) -> list[tuple[str, str]]:
        """(method, path) of every request except the /_fake control API."""
        with self._lock:
            return list(self._request_log)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "generation_count": len(self._generation_requests),
                "request_count": len(self._request_log),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "models": {tag: m.digest for tag, m in self._models.items()},
                "version": self.version,
                "latency_s": self.latency_s,
                "jitter": self.jitter,
                "fail_every": self.fail_every,
                "fault": self.fault,
            }

    def configure(self, config: Mapping[str, Any]) -> None:
        """Apply a ``/_fake/config`` body; unknown keys are an error, not ignored."""
        setters: dict[str, Callable[[Any], None]] = {
            "digests": lambda v: [self._set_or_add(t, d) for t, d in v.items()],
            "remove_models": lambda v: [self.remove_model(t) for t in v],
            "latency_s": lambda v: setattr(self, "latency_s", float(v)),
            "jitter": lambda v: setattr(self, "jitter", float(v)),
            "fail_every": lambda v: setattr(self, "fail_every", v and int(v)),
            "fault": lambda v: setattr(self, "fault", v),
            "hang_s": lambda v: setattr(self, "hang_s", float(v)),
            "version": lambda v: setattr(self, "version", str(v)),
            "supports_logprobs": lambda v: setattr(self, "supports_logprobs", bool(v)),
            "fail_models": lambda v: setattr(
                self, "fail_models", v if isinstance(v, dict) else set(v)
            ),
            "enqueue_faults": self.enqueue_faults,
        }
        unknown = sorted(set(config) - set(setters))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(setters)}")
        for key, value in config.items():
            setters[key](value)

    def _set_or_add(self, tag: str, digest: str) -> None:
        if self._find_model(tag) is None:
            self.add_model(tag, digest)
        else:
            self.set_digest(tag, digest)

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self._request_log.append((method, path))

    @contextmanager
    def _generation(self, body: dict[str, Any]) -> Iterator[str | None]:
        """Record one generation request, count it in flight, and decide its fault."""
        with self._lock:
            self._generation_requests.append(body)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            fault = self._next_fault(body.get("model"))
        try:
            yield fault
        finally:
            with self._lock:
                self._in_flight -= 1

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; True if it stopped."""
        return seconds > 0 and self._stopping.wait(seconds)

    def _latency(self) -> float:
        mean, jitter = self.latency_s, self.jitter
        if mean <= 0:
            return 0.0
        with self._lock:
            return mean * self._rng.uniform(1 - jitter, 1 + jitter)

    # -- generation

    def _prepare(self, endpoint: str, body: dict[str, Any]) -> Call:
        """Validate and normalise a generation request; the model counts as loaded."""
        call = prepare_call(
            endpoint, body, self._find_model, supports_logprobs=self.supports_logprobs
        )
        with self._lock:
            self._loaded[call.request["model"]] = time.time()
        return call

    def _run(self, call: Call) -> Result:
        """Ask the responder, then apply num_predict, thinking and logprobs."""
        return answer(call, self.responder)


# ---------------------------------------------------------------------------- CLI


def _parse_model_arg(value: str) -> tuple[str, str]:
    """``tag=digest``, or just ``tag`` (digest derived from the tag, stable across runs)."""
    tag, _, digest = value.partition("=")
    return tag, digest or hashlib.sha256(normalize_model(tag).encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Serve until killed; print the URL first so a parent process can read it."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.ollama_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="mean seconds per generation")
    parser.add_argument("--jitter", type=float, default=0.0, help="fraction, uniform +/-")
    parser.add_argument("--model", action="append", default=[], help="tag[=digest], repeatable")
    parser.add_argument("--thinking-model", action="append", default=[], help="tag with thinking")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="reported server version")
    parser.add_argument("--fail-every", type=int, default=None)
    parser.add_argument("--fault", default="500", choices=sorted(FAULTS))
    parser.add_argument("--no-logprobs", action="store_true", help="act as Ollama < 0.12.11")
    parser.add_argument("--seed", type=int, default=None, help="seed for latency jitter")
    args = parser.parse_args(argv)
    models = dict(_parse_model_arg(m) for m in args.model) if args.model else None
    fake = FakeOllama(
        models,
        thinking_models=args.thinking_model,
        supports_logprobs=not args.no_logprobs,
        version=args.version,
        latency_s=args.latency,
        jitter=args.jitter,
        fail_every=args.fail_every,
        fault=args.fault,
        port=args.port,
        rng_seed=args.seed,
    )
    with fake:
        print(fake.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
