"""Generation requests as a fake Ollama server takes them: validated, then normalised.

``/api/chat``, ``/api/generate`` and ``/v1/chat/completions`` all become one ``Call``
whose ``request`` is the responder's input, so the same prompt and options give the same
text through any endpoint. Validation follows routes.go, with its status codes and words.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.ollama_models import Model

_THINK_LEVELS = ("low", "medium", "high", "max")
_OPENAI_EFFORT = {"none": False, "minimal": "low", "xhigh": "max", "ultra": "max"}


class HttpError(Exception):
    """A request the server refuses; rendered as Ollama or OpenAI JSON by the handler."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Call:
    """A validated generation request: the responder's input and how to answer."""

    endpoint: str  # "chat" | "generate" | "openai"
    requested_model: str
    request: dict[str, Any]
    stream: bool
    think: bool
    logprobs: bool
    top_logprobs: int
    started: float = field(default_factory=time.monotonic)


def _content_text(content: Any) -> str:
    """OpenAI content may be a list of parts; Ollama content is a string."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def prepare_call(
    endpoint: str,
    body: dict[str, Any],
    find_model: Callable[[str], Model | None],
    *,
    supports_logprobs: bool,
) -> Call:
    """Validate like routes.go (order: model, top_logprobs, existence, think)."""
    requested = body.get("model")
    if not isinstance(requested, str) or not requested.strip():
        raise HttpError(400, "model is required")
    top = body.get("top_logprobs") or 0
    if not isinstance(top, int) or not 0 <= top <= 20:
        raise HttpError(400, "top_logprobs must be between 0 and 20")
    model = find_model(requested)
    if model is None:
        raise HttpError(404, f"model '{requested}' not found")
    think_value = body.get("think")
    if think_value is not None and not isinstance(think_value, bool):
        if think_value not in _THINK_LEVELS:
            raise HttpError(
                400,
                f'invalid think value: "{think_value}" '
                '(must be "high", "medium", "low", "max", true, or false)',
            )
    if think_value not in (None, False) and not model.thinking:
        raise HttpError(400, f"{json.dumps(requested)} does not support thinking")
    # A thinking model with think omitted thinks (routes.go sets think=true).
    think = model.thinking if think_value is None else think_value is not False
    options = body.get("options") or {}
    if not isinstance(options, Mapping):
        raise HttpError(400, "options must be an object")
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
    return Call(
        endpoint=endpoint,
        requested_model=requested,
        request=request,
        stream=body.get("stream") is not False,
        think=think,
        logprobs=bool(body.get("logprobs")) and supports_logprobs,
        top_logprobs=top,
    )


def openai_to_native(body: dict[str, Any]) -> dict[str, Any]:
    """Translate like openai.FromChatRequest, so /v1 and /api/chat share a responder input.

    Unlike real Ollama, absent temperature/top_p are not set to 1.0: the same decode
    options then give the same text through either endpoint.
    """
    if "messages" in body and not body["messages"]:
        raise HttpError(400, "[] is too short - 'messages'")
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
