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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

DEFAULT_MODEL = "qwen2.5-coder:7b"
DEFAULT_DIGEST = "dae161e27b0e90dd1856c8bb3209201fd6736d8eb66298e75ed87571486f4364"
DEFAULT_VERSION = "0.32.15"

FAULTS = frozenset({"500", "503", "disconnect", "midstream", "hang"})
# Two spaces, as in ErrMaxQueue (server/sched.go).
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
CRASH_MESSAGE = "llama runner process has terminated: exit status 2"
MIDSTREAM_MESSAGE = "an error was encountered while running the model: unexpected EOF"

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_THINK_LEVELS = ("low", "medium", "high", "max")
_OPENAI_EFFORT = {"none": False, "minimal": "low", "xhigh": "max", "ultra": "max"}
_VOCAB = (
    "alpha amber anchor apple arch atlas basil beacon birch blue bolt brook cedar cinder "
    "cloud cobalt comet coral crane delta dune ember falcon fern flint forge frost garnet "
    "glade granite harbor hazel heron indigo iris jade juniper kestrel lantern larch lumen "
    "maple marble meadow mesa nova oak onyx opal orbit pebble pine prism quartz raven "
    "reef ridge river saffron sage slate sparrow spruce summit tide topaz umber willow"
).split()

Responder = Callable[[dict[str, Any]], "str | Reply"]


@dataclass(frozen=True)
class Reply:
    """What a responder returns when plain text is not enough.

    ``done_reason`` is reported as given unless ``options.num_predict`` truncates the
    text (then it is ``"length"``); ``eval_count`` overrides the whitespace-token count.
    """

    text: str
    done_reason: str = "stop"
    thinking: str | None = None
    eval_count: int | None = None


class _HttpError(Exception):
    """A request the server refuses; rendered as Ollama or OpenAI JSON by the handler."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Model:
    tag: str
    digest: str
    thinking: bool
    family: str
    parameter_size: str
    quantization_level: str
    size: int
    modified_at: datetime


@dataclass
class _Call:
    """A validated generation request: the responder's input and how to answer."""

    endpoint: str  # "chat" | "generate" | "openai"
    requested_model: str
    request: dict[str, Any]
    stream: bool
    think: bool
    logprobs: bool
    top_logprobs: int
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Result:
    """A generated answer, split into the pieces a stream would send."""

    pieces: list[str]
    thinking_pieces: list[str]
    done_reason: str
    prompt_tokens: int
    eval_count: int
    logprobs: list[dict[str, Any]] | None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def thinking(self) -> str | None:
        return "".join(self.thinking_pieces) if self.thinking_pieces else None


# ---------------------------------------------------------------------------- helpers


def normalize_model(name: str) -> str:
    """Ollama's short display name: ``qwen`` -> ``qwen:latest``, default registry dropped."""
    name = name.strip()
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _family(name: str) -> str:
    """A plausible GGUF family from a tag's name: ``qwen2.5-coder`` -> ``qwen``."""
    letters = re.match(r"[a-z]*", name.rsplit("/", 1)[-1].lower())
    return (letters.group() if letters else "") or "llama"


def _check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise ValueError(f"digest must be 64 lowercase hex characters, got {digest!r}")
    return digest


def _canonical(value: Any) -> Any:
    """Integral floats become ints so ``0`` and ``0.0`` hash alike (JSON clients vary)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _hash(*parts: Any) -> bytes:
    text = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def _words(seed: bytes, count: int) -> list[str]:
    out: list[str] = []
    block = seed
    while len(out) < count:
        block = hashlib.sha256(block).digest()
        out.extend(_VOCAB[b % len(_VOCAB)] for b in block)
    return out[:count]


def _pieces(text: str) -> list[str]:
    """Whitespace tokens with their leading space, so ``"".join(pieces) == text``."""
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return [text] if text else []
    pieces[-1] += text[len("".join(pieces)) :]
    return pieces


def _token_count(text: str) -> int:
    return len(text.split())


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _content_text(content: Any) -> str:
    """OpenAI content may be a list of parts; Ollama content is a string."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def default_responder(request: Mapping[str, Any]) -> Reply:
    """Deterministic text from sha256(model, digest, messages, options, format).

    Same request, same text; a new digest, prompt, seed or any option gives a new text.
    With a ``format`` the text is a JSON object, as a structured-output model would give.
    """
    seed = _hash(
        request["model"],
        request["digest"],
        request["messages"],
        request["options"],
        request.get("format"),
    )
    sentence = " ".join(_words(seed, 12 + seed[0] % 20)).capitalize() + "."
    text = json.dumps({"answer": sentence}) if request.get("format") else sentence
    thinking = None
    if request.get("think"):
        thinking = "Let me think: " + " ".join(_words(seed[::-1], 8)) + "."
    return Reply(text=text, thinking=thinking)


def _logprobs_for(pieces: list[str], top: int, seed: bytes) -> list[dict[str, Any]]:
    """One entry per piece, shaped like server/logprob.go (bytes = UTF-8 of the token)."""
    out = []
    for i, token in enumerate(pieces):
        h = hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
        logprob = -round(h[0] / 255 * 3, 4)
        entry: dict[str, Any] = {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        if top > 0:
            alts = [
                {
                    "token": f"{token.strip()}~{k}",
                    "logprob": round(logprob - k * 0.5 - 0.25, 4),
                    "bytes": list(f"{token.strip()}~{k}".encode()),
                }
                for k in range(1, top)
            ]
            entry["top_logprobs"] = [{k: entry[k] for k in ("token", "logprob", "bytes")}, *alts]
        out.append(entry)
    return out


def _metrics(result: _Result, started: float) -> dict[str, int]:
    """Nanosecond durations and counts; zero values omitted, as Go's omitempty does."""
    load_ns = 1_000_000
    prompt_ns = max(1, result.prompt_tokens) * 50_000
    eval_ns = max(1, result.eval_count) * 1_000_000
    elapsed_ns = int((time.monotonic() - started) * 1e9)
    metrics = {
        "total_duration": max(elapsed_ns, load_ns + prompt_ns + eval_ns),
        "load_duration": load_ns,
        "prompt_eval_count": result.prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": result.eval_count,
        "eval_duration": eval_ns,
    }
    return {k: v for k, v in metrics.items() if v}


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
        self._models: dict[str, _Model] = {}
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
        self._httpd: _Server | None = None
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
        self._httpd = _Server(("127.0.0.1", self._port), self)
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
        model = _Model(
            tag=tag,
            digest=_check_digest(digest),
            thinking=thinking,
            family=family or _family(name),
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
            model.digest = _check_digest(digest)
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

    def _find_model(self, name: str) -> _Model | None:
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
        self._fault = _check_fault(value)

    def enqueue_faults(self, faults: Iterable[str | None]) -> None:
        """The next generation requests fail in this order (``None``: that one succeeds)."""
        checked = [None if f is None else _check_fault(f) for f in faults]
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
                    return _check_fault(by_tag[tag])
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

    def _prepare(self, endpoint: str, body: dict[str, Any]) -> _Call:
        """Validate like routes.go (order: model, top_logprobs, existence, think)."""
        requested = body.get("model")
        if not isinstance(requested, str) or not requested.strip():
            raise _HttpError(400, "model is required")
        top = body.get("top_logprobs") or 0
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise _HttpError(400, "top_logprobs must be between 0 and 20")
        model = self._find_model(requested)
        if model is None:
            raise _HttpError(404, f"model '{requested}' not found")
        think_value = body.get("think")
        if think_value is not None and not isinstance(think_value, bool):
            if think_value not in _THINK_LEVELS:
                raise _HttpError(
                    400,
                    f'invalid think value: "{think_value}" '
                    '(must be "high", "medium", "low", "max", true, or false)',
                )
        if think_value not in (None, False) and not model.thinking:
            raise _HttpError(400, f"{json.dumps(requested)} does not support thinking")
        # A thinking model with think omitted thinks (routes.go sets think=true).
        think = model.thinking if think_value is None else think_value is not False
        options = body.get("options") or {}
        if not isinstance(options, Mapping):
            raise _HttpError(400, "options must be an object")
        if endpoint == "generate":
            messages = (
                [{"role": "system", "content": str(body["system"])}] if body.get("system") else []
            )
            messages.append({"role": "user", "content": str(body.get("prompt") or "")})
        else:
            messages = [
                {"role": str(m.get("role", "")).lower(), "content": _content_text(m.get("content"))}
                for m in body.get("messages") or []
                if isinstance(m, Mapping)
            ]
        request = {
            **body,
            "endpoint": endpoint,
            "model": model.tag,
            "digest": model.digest,
            "messages": messages,
            "options": dict(options),
            "format": body.get("format") or None,
            "think": think_value if think and isinstance(think_value, str) else think,
            "logprobs": bool(body.get("logprobs")),
            "top_logprobs": top,
        }
        with self._lock:
            self._loaded[model.tag] = time.time()
        return _Call(
            endpoint=endpoint,
            requested_model=requested,
            request=request,
            stream=body.get("stream") is not False,
            think=think,
            logprobs=bool(body.get("logprobs")) and self.supports_logprobs,
            top_logprobs=top,
        )

    def _run(self, call: _Call) -> _Result:
        """Ask the responder, then apply num_predict, thinking and logprobs."""
        request = call.request
        if self._is_load_only(call):
            return _Result([], [], "load", 0, 0, None)
        responder = self.responder or default_responder
        try:
            reply = responder(request)
        except Exception as exc:  # a broken responder is a server error, visible in tests
            raise _HttpError(500, f"responder failed: {exc!r}") from exc
        if isinstance(reply, str):
            reply = Reply(reply)
        pieces, done_reason = _pieces(reply.text), reply.done_reason
        num_predict = request["options"].get("num_predict")
        if isinstance(num_predict, (int, float)) and 0 <= num_predict < len(pieces):
            pieces, done_reason = pieces[: int(num_predict)], "length"
        thinking_pieces: list[str] = []
        if call.think:
            thinking = reply.thinking
            if thinking is None:
                thinking = default_responder({**request, "think": True}).thinking or ""
            thinking_pieces = _pieces(thinking)
        prompt_tokens = sum(_token_count(m["content"]) for m in request["messages"])
        eval_count = reply.eval_count
        if eval_count is None:
            eval_count = len(pieces) + len(thinking_pieces)
        logprobs = None
        if call.logprobs:
            seed = _hash(request["model"], request["digest"], "".join(pieces))
            logprobs = _logprobs_for(pieces, call.top_logprobs, seed)
        return _Result(pieces, thinking_pieces, done_reason, prompt_tokens, eval_count, logprobs)

    @staticmethod
    def _is_load_only(call: _Call) -> bool:
        """An empty prompt or message list only loads the model (done_reason "load")."""
        body = call.request
        if call.endpoint == "generate":
            return not body.get("prompt")
        return call.endpoint == "chat" and not body.get("messages")


def _check_fault(value: str) -> str:
    if value not in FAULTS:
        raise ValueError(f"unknown fault {value!r}; choose one of {sorted(FAULTS)}")
    return value


# ---------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
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
    server: _Server
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
            return {"models": [_model_entry(m) for m in self.server.fake._models.values()]}

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
            entry = _model_entry(model)
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
                "details": _details(model),
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
            except _HttpError as exc:
                self._send_json(exc.status, {"error": exc.message})
                return
            if not self._survive_fault(fault, lambda s, m: self._send_json(s, {"error": m})):
                return
            try:
                result = fake._run(call)
            except _HttpError as exc:
                self._send_json(exc.status, {"error": exc.message})
                return
            if fake._sleep(fake._latency()):
                self.close_connection = True
                return
            chunks = _native_chunks(call, result)
            if fault == "midstream":
                if call.stream:
                    partial = [c for c in chunks if not c["done"]][:2]
                    self._stream("application/x-ndjson", [*partial, {"error": MIDSTREAM_MESSAGE}])
                else:  # non-streaming handlers turn a runner error into a 500 (routes.go)
                    self._send_json(500, {"error": MIDSTREAM_MESSAGE})
            elif call.stream:
                self._stream("application/x-ndjson", chunks)
            else:
                self._send_json(200, _native_single(call, result))

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
            data = [_openai_model_entry(m) for m in self.server.fake._models.values()]
        return {"object": "list", "data": data}

    def _openai_model(self, name: str) -> None:
        model = self.server.fake._find_model(name)
        if model is None:
            self._send_openai_error(404, f"model '{name}' not found")
        else:
            self._send_json(200, _openai_model_entry(model))

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
                call = fake._prepare("openai", _openai_to_native(body))
                result = (
                    fake._run(call) if self._survive_fault(fault, self._send_openai_error) else None
                )
            except _HttpError as exc:
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
                    self._send_json(200, _openai_completion(completion_id, call, result))
                return
            events = _openai_chunks(completion_id, call, result, body)
            if fault == "midstream":
                error = {"error": _openai_error_body(500, MIDSTREAM_MESSAGE)["error"]}
                events = [
                    e for e in events if e["choices"] and not e["choices"][0]["finish_reason"]
                ]
                events = [*events[:2], error]
            else:
                events.append("[DONE]")
            self._stream("text/event-stream", events, sse=True)

    def _send_openai_error(self, status: int, message: str) -> None:
        self._send_json(status, _openai_error_body(status, message))

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


# ---------------------------------------------------------------------------- shapes


def _details(model: _Model) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization_level,
    }


def _model_entry(model: _Model) -> dict[str, Any]:
    """An /api/tags entry (api.ListModelResponse)."""
    return {
        "name": model.tag,
        "model": model.tag,
        "modified_at": model.modified_at.isoformat(),
        "size": model.size,
        "digest": model.digest,
        "details": _details(model),
    }


def _openai_model_entry(model: _Model) -> dict[str, Any]:
    return {
        "id": model.tag,
        "object": "model",
        "created": int(model.modified_at.timestamp()),
        "owned_by": "library",
    }


def _native_chunks(call: _Call, result: _Result) -> list[dict[str, Any]]:
    """The NDJSON stream: thinking pieces, content pieces, then the done chunk."""
    base = {"model": call.requested_model}
    chat = call.endpoint == "chat"
    chunks = []
    for piece in result.thinking_pieces:
        chunk: dict[str, Any] = {**base, "created_at": _now_rfc3339()}
        if chat:
            chunk["message"] = {"role": "assistant", "content": "", "thinking": piece}
        else:
            chunk.update(response="", thinking=piece)
        chunk["done"] = False
        chunks.append(chunk)
    for i, piece in enumerate(result.pieces):
        chunk = {**base, "created_at": _now_rfc3339()}
        chunk.update(
            {"message": {"role": "assistant", "content": piece}} if chat else {"response": piece}
        )
        chunk["done"] = False
        if result.logprobs:
            chunk["logprobs"] = [result.logprobs[i]]
        chunks.append(chunk)
    final: dict[str, Any] = {**base, "created_at": _now_rfc3339()}
    final.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
    final.update(done=True, done_reason=result.done_reason, **_metrics(result, call.started))
    if not chat and result.done_reason != "load":
        final["context"] = list(range(1, 1 + min(8, result.prompt_tokens + result.eval_count)))
    chunks.append(final)
    return chunks


def _native_single(call: _Call, result: _Result) -> dict[str, Any]:
    """The ``"stream": false`` reply: the stream's pieces concatenated (routes.go)."""
    reply: dict[str, Any] = {"model": call.requested_model, "created_at": _now_rfc3339()}
    if call.endpoint == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": result.text}
        if result.thinking:
            message["thinking"] = result.thinking
        reply["message"] = message
    else:
        reply["response"] = result.text
        if result.thinking:
            reply["thinking"] = result.thinking
    reply.update(done=True, done_reason=result.done_reason, **_metrics(result, call.started))
    if call.endpoint == "generate" and result.done_reason != "load":
        reply["context"] = list(range(1, 1 + min(8, result.prompt_tokens + result.eval_count)))
    if result.logprobs:
        reply["logprobs"] = result.logprobs
    return reply


def _openai_error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _openai_to_native(body: dict[str, Any]) -> dict[str, Any]:
    """Translate like openai.FromChatRequest, so /v1 and /api/chat share a responder input.

    Unlike real Ollama, absent temperature/top_p are not set to 1.0: the same decode
    options then give the same text through either endpoint.
    """
    if "messages" in body and not body["messages"]:
        raise _HttpError(400, "[] is too short - 'messages'")
    options: dict[str, Any] = {}
    for key in ("seed", "temperature", "top_p", "frequency_penalty", "presence_penalty"):
        if body.get(key) is not None:
            options[key] = body[key]
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    fmt: Any = None
    if response_format.get("type") == "json_object":
        fmt = "json"
    elif response_format.get("type") == "json_schema":
        fmt = (response_format.get("json_schema") or {}).get("schema")
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    think = _OPENAI_EFFORT.get(effort, effort) if effort is not None else None
    native = {
        "model": body.get("model"),
        "messages": body.get("messages") or [],
        "options": options,
        "stream": bool(body.get("stream")),
        "logprobs": bool(body.get("logprobs")),
        "top_logprobs": body.get("top_logprobs") or 0,
    }
    if fmt is not None:
        native["format"] = fmt
    if think is not None:
        native["think"] = think
    return native


def _openai_usage(result: _Result) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.eval_count,
        "total_tokens": result.prompt_tokens + result.eval_count,
    }


def _openai_completion(completion_id: str, call: _Call, result: _Result) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    if result.thinking:
        message["reasoning"] = result.thinking
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": result.done_reason or None,
    }
    if result.logprobs:
        choice["logprobs"] = {"content": result.logprobs}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.requested_model,
        "system_fingerprint": "fp_ollama",
        "choices": [choice],
        "usage": _openai_usage(result),
    }


def _openai_chunks(
    completion_id: str, call: _Call, result: _Result, body: Mapping[str, Any]
) -> list[Any]:
    """SSE events: reasoning deltas, content deltas, the finish chunk, usage if asked."""

    def chunk(delta: dict[str, Any], finish: str | None, logprobs: Any = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if logprobs:
            choice["logprobs"] = {"content": logprobs}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.requested_model,
            "system_fingerprint": "fp_ollama",
            "choices": [choice],
        }

    events: list[Any] = [
        chunk({"role": "assistant", "content": "", "reasoning": p}, None)
        for p in result.thinking_pieces
    ]
    for i, piece in enumerate(result.pieces):
        lp = [result.logprobs[i]] if result.logprobs else None
        events.append(chunk({"role": "assistant", "content": piece}, None, lp))
    events.append(chunk({"role": "assistant", "content": ""}, result.done_reason or "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = chunk({}, None)
        usage.update(choices=[], usage=_openai_usage(result))
        events.append(usage)
    return events


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
