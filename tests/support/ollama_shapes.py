"""The JSON a fake Ollama server sends: native and OpenAI replies, chunks, model entries, errors.

Each shape follows the real server: Go's ``omitempty`` drops zero metrics, a stream's
pieces concatenate to the non-streaming reply, and OpenAI errors carry ``type``, ``param``
and ``code``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from tests.support.ollama_models import Model
from tests.support.ollama_replies import Result
from tests.support.ollama_requests import Call


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _metrics(result: Result, started: float) -> dict[str, int]:
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


def details(model: Model) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization_level,
    }


def model_entry(model: Model) -> dict[str, Any]:
    """An /api/tags entry (api.ListModelResponse)."""
    return {
        "name": model.tag,
        "model": model.tag,
        "modified_at": model.modified_at.isoformat(),
        "size": model.size,
        "digest": model.digest,
        "details": details(model),
    }


def openai_model_entry(model: Model) -> dict[str, Any]:
    return {
        "id": model.tag,
        "object": "model",
        "created": int(model.modified_at.timestamp()),
        "owned_by": "library",
    }


def native_chunks(call: Call, result: Result) -> list[dict[str, Any]]:
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


def native_single(call: Call, result: Result) -> dict[str, Any]:
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


def openai_error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _openai_usage(result: Result) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.eval_count,
        "total_tokens": result.prompt_tokens + result.eval_count,
    }


def openai_completion(completion_id: str, call: Call, result: Result) -> dict[str, Any]:
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


def openai_chunks(
    completion_id: str, call: Call, result: Result, body: Mapping[str, Any]
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
