"""OllamaProvider against the Ollama-protocol test server, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ollama
import pytest
from ollama._client import _parse_host  # private; `ollama._client` is a Client instance

from fdbuild.errors import ModelNotFound, ProviderUnavailable, TeacherCallError
from fdbuild.providers.base import TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.providers.ollama import OllamaProvider, normalize_host, normalize_tag
from tests.support.fixtures import OLLAMA_DIGEST, OLLAMA_MODEL
from tests.support.ollama_server import FakeOllama

T = TypeVar("T")
MESSAGES = (
    {"role": "system", "content": "You write SQL."},
    {"role": "user", "content": "Count rows."},
)
THINKER = "deepseek-r1:7b"


def request(**overrides: Any) -> TeacherRequest:
    fields: dict[str, Any] = {"messages": MESSAGES, "options": {"temperature": 0, "seed": 1}}
    return TeacherRequest(**{**fields, **overrides})


def with_provider(
    server_or_host: FakeOllama | str,
    use: Callable[[OllamaProvider], Awaitable[T]],
    **kwargs: Any,
) -> T:
    """Run ``use(provider)`` in a fresh event loop and always close the provider."""
    host = server_or_host if isinstance(server_or_host, str) else server_or_host.url
    kwargs.setdefault("model", OLLAMA_MODEL)

    async def run() -> T:
        provider = OllamaProvider(host=host, **kwargs)
        try:
            return await use(provider)
        finally:
            await provider.aclose()

    return asyncio.run(run())


def generate(
    server: FakeOllama, req: TeacherRequest | None = None, **kwargs: Any
) -> TeacherResponse:
    return with_provider(server, lambda p: p.generate(req or request()), **kwargs)


def call_error(
    server: FakeOllama, req: TeacherRequest | None = None, **kwargs: Any
) -> TeacherCallError:
    with pytest.raises(TeacherCallError) as err:
        generate(server, req, **kwargs)
    return err.value


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def thinker(make_ollama_server):
    return make_ollama_server(
        {OLLAMA_MODEL: OLLAMA_DIGEST, THINKER: "2" * 64}, thinking_models=[THINKER]
    )


# ---------------------------------------------------------------------------- hosts and tags


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("example.com", "http://example.com:11434"),
        (":5000", "http://127.0.0.1:5000"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com/ollama/", "https://example.com:443/ollama"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("http://localhost:11434", "http://localhost:11434"),
    ],
)
def test_normalize_host_follows_the_client(given, expected):
    assert normalize_host(given) == expected
    assert _parse_host(given) == expected  # the client agrees


def test_host_defaults_to_env_then_localhost(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert normalize_host(None) == "http://localhost:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:12345")
    assert normalize_host(None) == "http://0.0.0.0:12345"
    assert normalize_host("other:1") == "http://other:1"


def test_normalize_tag():
    assert normalize_tag("qwen") == "qwen:latest"
    assert normalize_tag("qwen2.5-coder:7b") == "qwen2.5-coder:7b"
    assert normalize_tag("registry.ollama.ai/library/qwen") == "qwen:latest"
    assert normalize_tag("user/model") == "user/model:latest"


# ---------------------------------------------------------------------------- resolve


def test_resolve_reports_digest_and_version(ollama_server):
    ollama_server.version = "0.13.1"
    identity = with_provider(ollama_server, lambda p: p.resolve())
    assert identity == TeacherIdentity("ollama", OLLAMA_MODEL, OLLAMA_DIGEST, "0.13.1")
    assert ollama_server.request_log == [("GET", "/api/tags"), ("GET", "/api/version")]


def test_resolve_normalises_latest_and_follows_digest_changes(ollama_server):
    ollama_server.add_model("llama3:latest", "4" * 64)
    identity = with_provider(ollama_server, lambda p: p.resolve(), model="llama3")
    assert (identity.model, identity.digest) == ("llama3:latest", "4" * 64)
    ollama_server.set_digest("llama3", "5" * 64)
    assert with_provider(ollama_server, lambda p: p.resolve(), model="llama3").digest == "5" * 64


def test_missing_model_says_what_to_pull(ollama_server):
    with pytest.raises(ModelNotFound) as err:
        with_provider(ollama_server, lambda p: p.resolve(), model="llama3.2")
    message = str(err.value)
    assert "`ollama pull llama3.2:latest`" in message
    assert ollama_server.url in message and OLLAMA_MODEL in message


def test_unreachable_server_says_how_to_start_it():
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(ProviderUnavailable) as err:
        with_provider(host, lambda p: p.resolve())
    message = str(err.value)
    assert f"http://{host}" in message
    assert (
        "ollama serve" in message and "OLLAMA_HOST" in message and "teachers.<name>.host" in message
    )


# ---------------------------------------------------------------------------- generate


def test_generate_maps_the_reply(ollama_server):
    response = generate(ollama_server)
    assert response.text and response.done_reason == "stop" and response.thinking is None
    assert response.completion_tokens == len(response.text.split())
    assert response.prompt_tokens == sum(len(m["content"].split()) for m in MESSAGES)
    assert response.total_duration_ns > 0 and response.eval_duration_ns > 0
    assert response.logprobs is None


def test_options_messages_and_format_arrive_verbatim(ollama_server):
    options = {"temperature": 0.2, "seed": 7, "min_p": 0.05, "top_k": 20, "stop": ["\n\n"]}
    generate(ollama_server, request(options=options, format={"type": "object"}))
    body = ollama_server.generation_requests[0]
    assert body["options"] == options  # min_p survives: a dict, not ollama.Options
    assert body["messages"] == list(MESSAGES)
    assert body["format"] == {"type": "object"} and body["stream"] is False
    assert "think" not in body and "logprobs" not in body


def test_truncation_is_returned_not_raised(ollama_server):
    response = generate(ollama_server, request(options={"num_predict": 2}))
    assert response.done_reason == "length" and len(response.text.split()) == 2


def test_think_passes_through(thinker):
    response = generate(thinker, request(think=True), model=THINKER)
    assert response.thinking and response.text
    generate(thinker, request(), model=THINKER, think="high")  # the teacher's default
    generate(thinker, request(think=False), model=THINKER, think="high")  # request wins
    sent = [body.get("think") for body in thinker.generation_requests]
    assert sent == [True, "high", False]


def test_logprobs_become_plain_dicts(ollama_server):
    response = generate(ollama_server, request(logprobs=True, top_logprobs=2))
    assert "".join(lp["token"] for lp in response.logprobs) == response.text
    first = response.logprobs[0]
    assert set(first) == {"token", "logprob", "top_logprobs"}  # the client drops bytes
    assert len(first["top_logprobs"]) == 2 and isinstance(first["top_logprobs"][0], dict)
    assert ollama_server.generation_requests[0]["top_logprobs"] == 2


def test_logprobs_unsupported_by_an_old_server(ollama_server):
    ollama_server.supports_logprobs = False
    error = call_error(ollama_server, request(logprobs=True))
    assert (error.retryable, error.reason) == (False, "logprobs_unsupported")
    assert "0.12.11" in str(error)


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("fault", "retryable", "reason"),
    [
        ("503", True, "http_503"),
        ("500", True, "http_500"),
        ("midstream", True, "http_500"),  # not streaming: the server answers 500
        ("disconnect", True, "connection"),
        ("hang", True, "timeout"),
    ],
)
def test_faults_map_to_retryable_errors(ollama_server, fault, retryable, reason):
    ollama_server.hang_s = 5
    ollama_server.enqueue_faults([fault])
    error = call_error(ollama_server, timeout_s=0.3)
    assert (error.retryable, error.reason) == (retryable, reason)
    assert ollama_server.url in str(error)


def test_busy_message_is_kept(ollama_server):
    ollama_server.enqueue_faults(["503"])
    assert "maximum pending requests exceeded" in str(call_error(ollama_server))


def test_model_removed_after_resolve_is_not_retryable(ollama_server):
    ollama_server.remove_model(OLLAMA_MODEL)
    error = call_error(ollama_server)
    assert (error.retryable, error.reason) == (False, "model_not_found")
    assert f"ollama pull {OLLAMA_MODEL}" in str(error)


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(think=True), "does not support thinking"),
        (request(logprobs=True, top_logprobs=21), "top_logprobs must be between 0 and 20"),
    ],
)
def test_other_4xx_are_not_retryable_and_keep_the_servers_words(ollama_server, req, message):
    error = call_error(ollama_server, req)
    assert (error.retryable, error.reason) == (False, "http_400")
    assert message in str(error)


def test_unreachable_server_is_a_retryable_connection_error():
    with pytest.raises(TeacherCallError) as err:
        with_provider(f"127.0.0.1:{free_port()}", lambda p: p.generate(request()))
    assert (err.value.retryable, err.value.reason) == (True, "connection")


def test_bad_format_is_refused_before_sending(ollama_server):
    error = call_error(ollama_server, request(format="yaml"))
    assert (error.retryable, error.reason) == (False, "bad_request")
    assert ollama_server.generation_count == 0


@pytest.mark.parametrize(
    ("status", "retryable", "reason"),
    [
        (-1, True, "stream_error"),
        (429, True, "http_429"),
        (499, True, "http_499"),
        (502, True, "http_502"),
        (403, False, "http_403"),
    ],
)
def test_status_codes_the_fake_does_not_send(status, retryable, reason):
    provider = OllamaProvider(OLLAMA_MODEL, host="127.0.0.1:1")
    error = provider._response_error(ollama.ResponseError("boom", status))
    assert (error.retryable, error.reason) == (retryable, reason)
    assert "boom" in str(error)
    asyncio.run(provider.aclose())
