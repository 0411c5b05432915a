"""What a fake Ollama server answers: the responder, its deterministic default, the result.

The default responder is a pure function of (model, digest, messages, options, format),
so a cache test can tell a re-generation from a cache hit, and a digest or prompt change
from neither. ``answer`` then applies what the server does to any reply: ``num_predict``
truncation, thinking, token counts and logprobs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.ollama_requests import Call, HttpError

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


@dataclass
class Result:
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


def answer(call: Call, responder: Responder | None) -> Result:
    """Ask the responder, then apply num_predict, thinking and logprobs."""
    request = call.request
    if _is_load_only(call):
        return Result([], [], "load", 0, 0, None)
    responder = responder or default_responder
    try:
        reply = responder(request)
    except Exception as exc:  # a broken responder is a server error, visible in tests
        raise HttpError(500, f"responder failed: {exc!r}") from exc
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
    return Result(pieces, thinking_pieces, done_reason, prompt_tokens, eval_count, logprobs)


def _is_load_only(call: Call) -> bool:
    """An empty prompt or message list only loads the model (done_reason "load")."""
    body = call.request
    if call.endpoint == "generate":
        return not body.get("prompt")
    return call.endpoint == "chat" and not body.get("messages")
