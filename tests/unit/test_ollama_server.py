"""The test server speaks Ollama well enough for the real ``ollama`` client (and httpx)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import ollama
import pytest
from ollama._types import Logprob  # not re-exported by the package

from tests.support.fixtures import OLLAMA_DIGEST, OLLAMA_MODEL
from tests.support.ollama_server import BUSY_MESSAGE, FakeOllama, Reply

MESSAGES = [{"role": "user", "content": "Write a SQL query."}]
OTHER_DIGEST = "1" * 64
THINKER = "deepseek-r1:7b"


@pytest.fixture
def client(ollama_server: FakeOllama):
    with ollama.Client(host=ollama_server.url, timeout=10) as c:
        yield c


@pytest.fixture
def thinker(make_ollama_server):
    return make_ollama_server(
        {OLLAMA_MODEL: OLLAMA_DIGEST, THINKER: "2" * 64}, thinking_models=[THINKER]
    )


def chat(client: ollama.Client, **kwargs) -> ollama.ChatResponse:
    kwargs.setdefault("messages", MESSAGES)
    return client.chat(kwargs.pop("model", OLLAMA_MODEL), **kwargs)


# ---------------------------------------------------------------------------- models


def test_list_reports_digests_and_latest_normalisation(ollama_server, client):
    ollama_server.add_model("llama3", OTHER_DIGEST)
    models = {m.model: m for m in client.list().models}
    assert models[OLLAMA_MODEL].digest == OLLAMA_DIGEST
    assert models["llama3:latest"].digest == OTHER_DIGEST
    details = models[OLLAMA_MODEL].details
    assert (details.format, details.family, details.parameter_size) == ("gguf", "qwen", "7B")


def test_set_digest_and_remove_model(ollama_server, client):
    ollama_server.set_digest(OLLAMA_MODEL, OTHER_DIGEST)
    assert [m.digest for m in client.list().models] == [OTHER_DIGEST]
    ollama_server.remove_model(OLLAMA_MODEL)
    assert client.list().models == []
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ollama_server.add_model("x", "sha256:" + OTHER_DIGEST)


def test_version_root_show_and_ps(ollama_server, client):
    ollama_server.version = "0.12.10"
    with httpx.Client(base_url=ollama_server.url) as http:
        assert http.get("/api/version").json() == {"version": "0.12.10"}
        assert http.get("/").text == "Ollama is running"
        head = http.head("/")
        assert head.status_code == 200 and head.content == b""
    show = client.show(OLLAMA_MODEL)
    assert show.modelinfo["general.architecture"] == "qwen" and "completion" in show.capabilities
    with pytest.raises(ollama.ResponseError) as err:
        client.show("qwen2.5-coder")  # no tag means :latest, which is not installed
    assert err.value.status_code == 404
    assert client.ps().models == []
    chat(client)
    assert [m.digest for m in client.ps().models] == [OLLAMA_DIGEST]


# ---------------------------------------------------------------------------- chat


def test_chat_non_streaming(client):
    reply = chat(client, options={"seed": 1})
    assert reply.done and reply.done_reason == "stop"
    assert reply.message.role == "assistant" and reply.message.content
    assert reply.eval_count == len(reply.message.content.split())
    assert reply.prompt_eval_count == len(MESSAGES[0]["content"].split())
    for metric in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert getattr(reply, metric) > 0


def test_chat_streaming_concatenates_to_the_non_streaming_text(client):
    whole = chat(client, options={"seed": 1}).message.content
    chunks = list(chat(client, options={"seed": 1}, stream=True))
    assert "".join(c.message.content for c in chunks) == whole
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].done_reason == "stop" and chunks[-1].eval_count


def test_stream_wire_format_is_ndjson(ollama_server):
    body = {"model": OLLAMA_MODEL, "messages": MESSAGES}
    with httpx.Client(base_url=ollama_server.url) as http:
        with http.stream("POST", "/api/chat", json=body) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            assert response.headers["transfer-encoding"] == "chunked"
            raw = response.read().decode()
    lines = raw.split("\n")
    assert lines[-1] == "" and all(lines[:-1])  # newline-terminated, no blank lines
    parsed = [json.loads(line) for line in lines[:-1]]
    assert all("message" in p for p in parsed) and parsed[-1]["done"] is True


def test_same_request_same_text_and_every_input_changes_it(ollama_server, client):
    base = chat(client, options={"seed": 1, "temperature": 0}).message.content
    assert chat(client, options={"seed": 1, "temperature": 0}).message.content == base
    assert chat(client, options={"seed": 2, "temperature": 0}).message.content != base
    other_prompt = [{"role": "user", "content": "Something else."}]
    assert chat(client, messages=other_prompt, options={"seed": 1}).message.content != base
    ollama_server.set_digest(OLLAMA_MODEL, OTHER_DIGEST)
    assert chat(client, options={"seed": 1, "temperature": 0}).message.content != base


def test_num_predict_truncates_with_length(client):
    reply = chat(client, options={"num_predict": 3})
    assert reply.done_reason == "length"
    assert len(reply.message.content.split()) == 3 and reply.eval_count == 3


def test_empty_messages_only_load_the_model(client):
    reply = chat(client, messages=[])
    assert reply.done_reason == "load" and reply.message.content == ""


def test_generate_streaming_and_not(client):
    reply = client.generate(OLLAMA_MODEL, "Write a SQL query.", options={"seed": 1})
    assert reply.done_reason == "stop" and reply.response and reply.context
    chunks = list(
        client.generate(OLLAMA_MODEL, "Write a SQL query.", options={"seed": 1}, stream=True)
    )
    assert "".join(c.response for c in chunks) == reply.response
    # A bare prompt is answered like a one-message chat (same responder input).
    assert reply.response == chat(client, options={"seed": 1}).message.content


def test_thinking_model_replies_with_separate_thinking(thinker):
    with ollama.Client(host=thinker.url) as client:
        reply = chat(client, model=THINKER, think=True)
        assert reply.message.thinking and reply.message.content
        assert reply.message.thinking not in reply.message.content
        streamed = list(chat(client, model=THINKER, stream=True))  # think omitted: on
        assert "".join(c.message.thinking or "" for c in streamed) == reply.message.thinking
        assert chat(client, model=THINKER, think=False).message.thinking is None
        with pytest.raises(ollama.ResponseError) as err:
            chat(client, think=True)
    assert err.value.status_code == 400
    assert err.value.error == f'"{OLLAMA_MODEL}" does not support thinking'
    assert thinker.generation_requests[0]["think"] is True


def test_custom_responder_sees_normalised_request(ollama_server, client):
    seen = []

    def responder(request):
        seen.append(request)
        return Reply("one two three four", done_reason="stop", thinking="ignored")

    ollama_server.responder = responder
    reply = chat(client, model="qwen2.5-coder:7b", options={"seed": 7}, format="json")
    assert reply.message.content == "one two three four" and reply.message.thinking is None
    request = seen[0]
    assert request["model"] == OLLAMA_MODEL and request["digest"] == OLLAMA_DIGEST
    assert request["messages"] == MESSAGES and request["options"] == {"seed": 7}
    assert request["format"] == "json" and request["think"] is False
    ollama_server.responder = lambda request: "plain text reply"
    assert chat(client).message.content == "plain text reply"


def test_async_client_chat_and_stream(ollama_server):
    async def run():
        async with ollama.AsyncClient(host=ollama_server.url) as client:
            reply = await client.chat(OLLAMA_MODEL, messages=MESSAGES)
            stream = await client.chat(OLLAMA_MODEL, messages=MESSAGES, stream=True)
            chunks = [c async for c in stream]
            return reply, chunks

    reply, chunks = asyncio.run(run())
    assert "".join(c.message.content for c in chunks) == reply.message.content


# ---------------------------------------------------------------------------- errors


def test_unknown_model_is_404(client):
    with pytest.raises(ollama.ResponseError) as err:
        chat(client, model="nope")
    assert err.value.status_code == 404 and err.value.error == "model 'nope' not found"
    with pytest.raises(ollama.ResponseError) as err:
        list(chat(client, model="nope", stream=True))
    assert err.value.status_code == 404


def test_bad_requests_are_400_with_real_messages(ollama_server, client):
    with httpx.Client(base_url=ollama_server.url) as http:
        response = http.post("/api/chat", json={"messages": MESSAGES})
        assert (response.status_code, response.json()) == (400, {"error": "model is required"})
    with pytest.raises(ollama.ResponseError) as err:
        chat(client, logprobs=True, top_logprobs=21)
    assert err.value.status_code == 400
    assert err.value.error == "top_logprobs must be between 0 and 20"


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ("503", 503, BUSY_MESSAGE),
        ("500", 500, "llama runner process has terminated: exit status 2"),
    ],
)
def test_status_faults(ollama_server, client, fault, status, message):
    ollama_server.enqueue_faults([fault])
    with pytest.raises(ollama.ResponseError) as err:
        chat(client)
    assert (err.value.status_code, err.value.error) == (status, message)
    assert "  maximum pending" in BUSY_MESSAGE  # two spaces, as ErrMaxQueue
    assert chat(client).done  # the next request succeeds


def test_midstream_error_raises_status_minus_one_after_chunks(ollama_server, client):
    ollama_server.enqueue_faults(["midstream", "midstream"])
    received = []
    with pytest.raises(ollama.ResponseError) as err:
        for chunk in chat(client, stream=True):
            received.append(chunk)
    assert err.value.status_code == -1 and "error was encountered" in err.value.error
    assert 1 <= len(received) <= 2 and not received[-1].done
    with pytest.raises(ollama.ResponseError) as err:  # not streaming: the server sends 500
        chat(client)
    assert err.value.status_code == 500


def test_disconnect_raises_a_transport_error(ollama_server, client):
    ollama_server.enqueue_faults(["disconnect"])
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client)
    assert chat(client).done


def test_hang_times_out_the_client(ollama_server):
    ollama_server.hang_s = 5
    ollama_server.enqueue_faults(["hang"])
    with ollama.Client(host=ollama_server.url, timeout=0.2) as client:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            chat(client)
    assert time.monotonic() - start < 2


def test_fail_every_and_fail_models(ollama_server, client):
    ollama_server.fail_every, ollama_server.fault = 3, "503"
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(chat(client).done)
        except ollama.ResponseError as exc:
            outcomes.append(exc.status_code)
    assert outcomes == [True, True, 503, True, True, 503]
    assert ollama_server.generation_count == 6  # failed requests are recorded too
    ollama_server.fail_every = None
    ollama_server.fail_models = {"qwen2.5-coder:7b": "500"}
    with pytest.raises(ollama.ResponseError) as err:
        chat(client)
    assert err.value.status_code == 500


def test_a_stopped_server_refuses_connections_and_restarts_on_its_port(ollama_server, client):
    url = ollama_server.url
    chat(client)  # leaves a keep-alive connection in the client's pool
    ollama_server.stop()
    with pytest.raises((ConnectionError, httpx.TransportError)):
        chat(client)
    ollama_server.start()
    assert ollama_server.url == url and chat(client).done


# ---------------------------------------------------------------------------- latency


def test_latency_applies_per_request_and_counts_in_flight(ollama_server):
    ollama_server.latency_s, ollama_server.jitter = 0.2, 0.1

    async def run():
        async with ollama.AsyncClient(host=ollama_server.url) as client:
            start = time.monotonic()
            await asyncio.gather(*(client.chat(OLLAMA_MODEL, messages=MESSAGES) for _ in range(4)))
            return time.monotonic() - start

    elapsed = asyncio.run(run())
    assert 0.18 <= elapsed < 0.6  # concurrent, not serialised
    assert ollama_server.max_in_flight == 4 and ollama_server.in_flight == 0


# ---------------------------------------------------------------------------- logprobs


def test_logprobs_parse_into_the_client_model(client):
    reply = chat(client, logprobs=True, top_logprobs=3)
    assert reply.logprobs and all(isinstance(lp, Logprob) for lp in reply.logprobs)
    assert "".join(lp.token for lp in reply.logprobs) == reply.message.content
    assert all(len(lp.top_logprobs) == 3 and lp.logprob <= 0 for lp in reply.logprobs)
    assert all(lp.top_logprobs is None for lp in chat(client, logprobs=True).logprobs)
    assert chat(client).logprobs is None


def test_logprobs_carry_bytes_on_the_wire_and_can_be_unsupported(ollama_server):
    body = {"model": OLLAMA_MODEL, "messages": MESSAGES, "stream": False, "logprobs": True}
    with httpx.Client(base_url=ollama_server.url) as http:
        first = http.post("/api/chat", json=body).json()["logprobs"][0]
        assert first["bytes"] == list(first["token"].encode())
        ollama_server.supports_logprobs = False
        assert "logprobs" not in http.post("/api/chat", json=body).json()


# ---------------------------------------------------------------------------- /v1


def test_openai_models_and_chat_match_native_chat(ollama_server, client):
    native = chat(client, options={"seed": 3, "temperature": 0, "num_predict": 5})
    body = {"model": OLLAMA_MODEL, "messages": MESSAGES, "seed": 3, "temperature": 0}
    with httpx.Client(base_url=ollama_server.url) as http:
        models = http.get("/v1/models").json()
        completion = http.post("/v1/chat/completions", json={**body, "max_tokens": 5}).json()
    assert models["object"] == "list" and models["data"][0]["id"] == OLLAMA_MODEL
    assert models["data"][0]["object"] == "model"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["system_fingerprint"] == "fp_ollama"
    choice = completion["choices"][0]
    assert choice["message"]["content"] == native.message.content
    assert choice["finish_reason"] == "length"
    assert completion["usage"] == {
        "prompt_tokens": native.prompt_eval_count,
        "completion_tokens": 5,
        "total_tokens": native.prompt_eval_count + 5,
    }


def test_openai_logprobs_and_sse_stream(ollama_server):
    body = {"model": OLLAMA_MODEL, "messages": MESSAGES}
    with httpx.Client(base_url=ollama_server.url) as http:
        whole = http.post("/v1/chat/completions", json={**body, "logprobs": True}).json()
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with http.stream("POST", "/v1/chat/completions", json=stream_body) as response:
            assert response.headers["content-type"] == "text/event-stream"
            raw = response.read().decode()
    content = whole["choices"][0]["message"]["content"]
    assert "".join(lp["token"] for lp in whole["choices"][0]["logprobs"]["content"]) == content
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == content
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]


def test_openai_errors_are_openai_shaped(ollama_server):
    with httpx.Client(base_url=ollama_server.url) as http:
        missing = http.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES})
        empty = http.post("/v1/chat/completions", json={"model": OLLAMA_MODEL, "messages": []})
        ollama_server.enqueue_faults(["503"])
        busy = http.post("/v1/chat/completions", json={"model": OLLAMA_MODEL, "messages": MESSAGES})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "model 'nope' not found",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }
    assert empty.status_code == 400 and empty.json()["error"]["type"] == "invalid_request_error"
    assert busy.status_code == 503 and busy.json()["error"]["message"] == BUSY_MESSAGE
    assert ollama_server.generation_count == 3


# ---------------------------------------------------------------------------- control


def test_control_api_and_request_log(ollama_server, client):
    chat(client)
    with httpx.Client(base_url=ollama_server.url) as http:
        config = {"digests": {OLLAMA_MODEL: OTHER_DIGEST}, "latency_s": 0.01, "version": "0.13.0"}
        assert http.post("/_fake/config", json=config).status_code == 200
        assert http.post("/_fake/config", json={"bogus": 1}).status_code == 400
        stats = http.get("/_fake/stats").json()
        assert stats["generation_count"] == 1 and stats["models"] == {OLLAMA_MODEL: OTHER_DIGEST}
        assert http.get("/api/version").json()["version"] == "0.13.0"
        http.post("/_fake/reset")
        assert http.get("/_fake/stats").json()["generation_count"] == 0
    assert ollama_server.request_log == []  # the control API is not logged
    assert client.list().models[0].digest == OTHER_DIGEST
    assert ollama_server.request_log == [("GET", "/api/tags")]


def test_runs_as_a_subprocess():
    digest = "3" * 64
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.ollama_server",
            "--port",
            "0",
            "--model",
            f"m:1b={digest}",
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with ollama.Client(host=url) as client:
            assert [(m.model, m.digest) for m in client.list().models] == [("m:1b", digest)]
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
