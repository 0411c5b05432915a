"""OpenAIProvider against FakeOllama's /v1 endpoints, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from fdbuild.errors import ModelNotFound, ProviderError, ProviderUnavailable, TeacherCallError
from fdbuild.providers.base import TeacherRequest
from fdbuild.providers.openai import OpenAIProvider, reported_digest, request_body
from tests.support import ollama_http
from tests.support.ollama_server import BUSY_MESSAGE, CRASH_MESSAGE, FakeOllama

MODEL = "qwen2.5-coder:7b"
THINKER = "qwq:32b"
T = TypeVar("T")
MESSAGES = (
    {"role": "system", "content": "You write SQLite SQL."},
    {"role": "user", "content": "Count the users."},
)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama({MODEL: "a" * 64, THINKER: "b" * 64}, thinking_models=[THINKER])
    with server:
        yield server


def make(fake: FakeOllama, **kwargs: Any) -> OpenAIProvider:
    return OpenAIProvider(**{"model": MODEL, "base_url": f"{fake.url}/v1/", **kwargs})


def run(provider: OpenAIProvider, action: Callable[[OpenAIProvider], Awaitable[T]]) -> T:
    """One event loop per test; the client is closed whatever happens."""

    async def go() -> T:
        try:
            return await action(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def generate(provider: OpenAIProvider, **request: Any) -> Any:
    request.setdefault("messages", MESSAGES)
    request.setdefault("options", {"temperature": 0.2, "seed": 7})
    return run(provider, lambda p: p.generate(TeacherRequest(**request)))


def call_error(provider: OpenAIProvider, **request: Any) -> TeacherCallError:
    with pytest.raises(TeacherCallError) as info:
        generate(provider, **request)
    return info.value


# -- resolve


def test_resolve_unversioned_model_logs_that_invalidation_is_manual(fake, caplog):
    with caplog.at_level(logging.WARNING, logger="fdbuild.providers.openai"):
        identity = run(make(fake), lambda p: p.resolve())
    assert (identity.provider, identity.model) == ("openai", MODEL)
    assert identity.digest == f"unversioned:{MODEL}"
    assert identity.server_version == "FakeOllama"  # the Server header: recorded, not keyed
    assert "NOT be invalidated" in caplog.text and "revision" in caplog.text
    assert fake.request_log == [("GET", "/v1/models")]


def test_resolve_declared_revision_is_the_digest(fake, caplog):
    with caplog.at_level(logging.WARNING):
        identity = run(make(fake, revision="2024-06-01"), lambda p: p.resolve())
    assert identity.digest == "rev:2024-06-01"
    assert identity.key_parts() == {
        "provider": "openai",
        "model": MODEL,
        "digest": "rev:2024-06-01",
    }
    assert caplog.text == ""


def test_resolve_missing_model_lists_the_served_ones(fake):
    with pytest.raises(ModelNotFound) as info:
        run(make(fake, model="llama3:8b"), lambda p: p.resolve())
    assert "'llama3:8b'" in info.value.message
    assert MODEL in info.value.message and THINKER in info.value.message


def test_resolve_without_a_server_is_unavailable(fake):
    provider = make(fake)
    fake.stop()
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        run(provider, lambda p: p.resolve())


@pytest.mark.parametrize(
    ("entry", "digest"),
    [
        ({"id": "m", "digest": "c" * 64}, "sha256:" + "c" * 64),
        ({"id": "m", "digest": "sha256:" + "d" * 64}, "sha256:" + "d" * 64),
        ({"id": "m", "digest": "v7"}, "digest:v7"),
        ({"id": "m", "sha256": "e" * 64}, "sha256:" + "e" * 64),
        ({"id": "m", "revision": "abc123", "sha256": "f" * 64}, "sha256:" + "f" * 64),
        ({"id": "m", "revision": "abc123"}, "rev:abc123"),
        ({"id": "m", "meta": {"sha256": "0" * 64}}, "sha256:" + "0" * 64),
        ({"id": "m", "root": "/models/x", "owned_by": "vllm"}, None),
    ],
)
def test_reported_digest_prefers_digest_then_sha256_then_revision(entry, digest):
    assert reported_digest(entry) == digest


def test_a_reported_digest_beats_the_declared_revision(fake, monkeypatch):
    entry = {"id": MODEL, "object": "model", "digest": "9" * 64}
    monkeypatch.setattr(ollama_http, "openai_model_entry", lambda m: entry)
    identity = run(make(fake, revision="mine"), lambda p: p.resolve())
    assert identity.digest == "sha256:" + "9" * 64


# -- generate


def test_generate_returns_text_tokens_and_duration(fake):
    reply = generate(make(fake))
    assert reply.text and reply.done_reason == "stop"
    assert reply.completion_tokens == len(reply.text.split())
    assert reply.prompt_tokens == 7
    assert reply.total_duration_ns > 0
    assert reply.thinking is None and reply.logprobs is None
    again = generate(make(fake))
    assert again.text == reply.text


def test_options_are_mapped_as_the_server_receives_them(fake):
    options = {
        "temperature": 0.2,
        "top_p": 0.95,
        "top_k": 40,
        "min_p": 0.05,
        "seed": 7,
        "num_predict": 64,
        "stop": ["\n\n"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "repeat_penalty": 1.1,
    }
    generate(make(fake), options=options, format="json", logprobs=True, top_logprobs=3)
    assert fake.generation_requests == [
        {
            "model": MODEL,
            "messages": [dict(m) for m in MESSAGES],
            "stream": False,
            "temperature": 0.2,
            "top_p": 0.95,
            "top_k": 40,
            "min_p": 0.05,
            "seed": 7,
            "max_tokens": 64,
            "stop": ["\n\n"],
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "repetition_penalty": 1.1,
            "response_format": {"type": "json_object"},
            "logprobs": True,
            "top_logprobs": 3,
        }
    ]


def test_request_body_maps_schema_think_and_unbounded_num_predict():
    schema = {"type": "object", "properties": {"sql": {"type": "string"}}}
    body = request_body(
        "m", TeacherRequest(messages=MESSAGES, options={"num_predict": -1}, format=schema)
    )
    assert "max_tokens" not in body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    effort = request_body("m", TeacherRequest(messages=MESSAGES, options={}, think="high"))
    assert effort["reasoning_effort"] == "high"
    off = request_body("m", TeacherRequest(messages=MESSAGES, options={}, think=False))
    assert off["chat_template_kwargs"] == {"enable_thinking": False}


def test_num_predict_truncation_is_done_reason_length(fake):
    reply = generate(make(fake), options={"seed": 1, "num_predict": 3})
    assert reply.done_reason == "length"
    assert reply.completion_tokens == 3 and len(reply.text.split()) == 3


def test_reasoning_comes_back_as_thinking(fake):
    reply = generate(make(fake, model=THINKER), think="high")
    assert reply.thinking and reply.thinking.startswith("Let me think")
    assert fake.generation_requests[0]["reasoning_effort"] == "high"


def test_logprobs_come_back_per_token(fake):
    reply = generate(make(fake), logprobs=True, top_logprobs=2)
    assert [lp["token"] for lp in reply.logprobs] == [
        " " * (i > 0) + w for i, w in enumerate(reply.text.split())
    ]
    assert all(len(lp["top_logprobs"]) == 2 for lp in reply.logprobs)


def test_logprobs_asked_but_not_served_is_not_retryable(fake):
    fake.supports_logprobs = False
    error = call_error(make(fake), logprobs=True)
    assert (error.retryable, error.reason) == (False, "logprobs_unsupported")


# -- errors


@pytest.mark.parametrize(
    ("fault", "reason", "words"),
    [
        ("500", "http_500", CRASH_MESSAGE),
        ("503", "http_503", BUSY_MESSAGE),
        ("disconnect", "connection", "lost the connection"),
    ],
)
def test_server_faults_are_retryable(fake, fault, reason, words):
    fake.enqueue_faults([fault])
    error = call_error(make(fake))
    assert (error.retryable, error.reason) == (True, reason)
    assert words in error.message
    assert generate(make(fake)).text  # the next request goes through


def test_a_hung_server_times_out_retryably(fake):
    fake.hang_s = 5
    fake.enqueue_faults(["hang"])
    error = call_error(make(fake, timeout_s=0.3))
    assert (error.retryable, error.reason) == (True, "timeout")


def test_client_errors_are_not_retryable_and_carry_the_server_message(fake):
    error = call_error(make(fake), think="high")  # the model cannot think: HTTP 400
    assert (error.retryable, error.reason) == (False, "http_400")
    assert "does not support thinking" in error.message
    gone = call_error(make(fake, model="gone:1b"))
    assert (gone.retryable, gone.reason) == (False, "model_not_found")
    assert "model 'gone:1b' not found" in gone.message


def test_bad_format_is_refused_before_sending(fake):
    error = call_error(make(fake), format="yaml")
    assert (error.retryable, error.reason) == (False, "bad_request")
    assert fake.generation_requests == []


# -- API key


def test_api_key_is_sent_as_bearer_and_never_in_the_identity(fake, monkeypatch):
    seen: list[str | None] = []
    dispatch = ollama_http._Handler._dispatch

    def recording(self: Any, method: str) -> None:
        seen.append(self.headers.get("Authorization"))
        dispatch(self, method)

    monkeypatch.setattr(ollama_http._Handler, "_dispatch", recording)
    monkeypatch.setenv("FD_TEST_API_KEY", "sk-sekrit")
    provider = make(fake, api_key_env="FD_TEST_API_KEY", revision="r1")

    async def both(p: OpenAIProvider) -> Any:
        return await p.resolve(), await p.generate(TeacherRequest(MESSAGES, {}))

    identity, _ = run(provider, both)
    assert seen == ["Bearer sk-sekrit", "Bearer sk-sekrit"]
    assert "sekrit" not in repr(identity) and "sekrit" not in repr(provider)
    assert all("sekrit" not in repr(v) for v in vars(provider).values())


def test_missing_api_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("FD_NO_SUCH_KEY", raising=False)
    with pytest.raises(ProviderError, match="FD_NO_SUCH_KEY"):
        OpenAIProvider(MODEL, "http://127.0.0.1:9/v1", api_key_env="FD_NO_SUCH_KEY")
