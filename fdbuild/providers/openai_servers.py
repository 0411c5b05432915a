"""What each OpenAI-compatible server calls fdbuild's decode options (pure data; the
loader checks targets against it without importing the HTTP client).

fdbuild's decode options use Ollama's names. An openai teacher's ``server:`` names the
server software, and each option is sent under that server's request field, or refused
at load time when the server has none: a server that silently ignores a field (as
llama-cpp-python's server does for ``repetition_penalty``, or for any unknown field)
would otherwise leave an option in the key that changes nothing.

Sources checked for the field names of ``/v1/chat/completions``:

* ``llama-cpp-python``: ``llama_cpp/server/types.py`` ``CreateChatCompletionRequest``
  (0.3.x): ``top_k``, ``min_p``, ``repeat_penalty``, ``seed``, ``stop``, ``max_tokens``,
  ``presence_penalty``, ``frequency_penalty``; no ``typical_p``, no ``repeat_last_n``.
* ``llamacpp`` (llama.cpp's ``llama-server``): ``tools/server/README.md``, whose chat
  endpoint takes the ``/completion`` options too: ``top_k``, ``min_p``, ``typical_p``,
  ``repeat_penalty``, ``repeat_last_n``, ``n_keep``, ``seed``, ``stop``, ``max_tokens``.
* ``vllm``: "Extra Parameters" of vLLM's OpenAI-compatible server (its SamplingParams):
  ``top_k``, ``min_p``, ``repetition_penalty``; ``seed``, ``stop``, ``max_tokens`` and the
  penalties are OpenAI's own.
* ``sglang``: ``sglang/srt/entrypoints/openai/protocol.py`` ``ChatCompletionRequest``:
  ``top_k``, ``min_p``, ``repetition_penalty`` ("extra parameters for SRT backend");
  ``seed``, ``stop``, ``max_tokens`` and the penalties are OpenAI's own.
* ``openai`` (the OpenAI API itself): OpenAI's fields only.

Unset ``server:`` keeps fdbuild's earlier behaviour: ``repeat_penalty`` is sent as
``repetition_penalty``, every other option under its own name, and nothing is checked.
"""

from __future__ import annotations

SERVERS = ("vllm", "llamacpp", "sglang", "llama-cpp-python", "openai")

_OPENAI = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
}
_SAMPLERS = {"top_k": "top_k", "min_p": "min_p"}

# server -> {fdbuild option: request field}
OPTION_FIELDS: dict[str, dict[str, str]] = {
    "openai": dict(_OPENAI),
    "vllm": {**_OPENAI, **_SAMPLERS, "repeat_penalty": "repetition_penalty"},
    "sglang": {**_OPENAI, **_SAMPLERS, "repeat_penalty": "repetition_penalty"},
    "llama-cpp-python": {**_OPENAI, **_SAMPLERS, "repeat_penalty": "repeat_penalty"},
    "llamacpp": {
        **_OPENAI,
        **_SAMPLERS,
        "typical_p": "typical_p",
        "repeat_penalty": "repeat_penalty",
        "repeat_last_n": "repeat_last_n",
        "num_keep": "n_keep",
    },
}
# What an unset ``server:`` sends (fdbuild before issue 10): renamed, else the same name.
LEGACY_RENAMED = {"repeat_penalty": "repetition_penalty", "num_predict": "max_tokens"}


def field_for(server: str | None, option: str) -> str | None:
    """The request field an option is sent as; None when the server has no such field."""
    if server is None:
        return LEGACY_RENAMED.get(option, option)
    return OPTION_FIELDS[server].get(option)


def unsupported(server: str | None, options: dict[str, object]) -> list[str]:
    """The options given that the server cannot receive (none for an unset server)."""
    if server is None:
        return []
    return sorted(name for name in options if name not in OPTION_FIELDS[server])


def request_parts(
    server: str | None, extra_body: dict[str, object]
) -> tuple[tuple[str, object], ...]:
    """The identity's keyed request parts (empty when neither is set: keys stay as before)."""
    parts: list[tuple[str, object]] = []
    if server is not None:
        parts.append(("server", server))
    if extra_body:
        parts.append(("extra_body", dict(extra_body)))
    return tuple(parts)
