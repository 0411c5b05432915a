"""Teacher behind an OpenAI-compatible server: vLLM, SGLang, llama-server, Ollama's /v1.

Plain HTTP through ``httpx.AsyncClient`` (no ``openai`` package): ``GET {base_url}/models``
to resolve, ``POST {base_url}/chat/completions`` (non-streaming) to generate.

**Identity.** These servers rarely say which weights they serve, so the digest is, in
order of preference:

1. what the model's ``/models`` entry reports: the first of ``digest`` (64 hex digits get
   ``sha256:``), ``sha256`` (prefixed ``sha256:``) or ``revision`` (prefixed ``rev:``),
   at the top level of the entry, then inside its ``meta`` object (llama-server's);
2. ``revision`` given to the constructor, prefixed ``rev:`` (the user's declaration);
3. ``unversioned:<model>``, with a logged warning: invalidation on weight changes is
   then up to the user.

A local model file is better than all three when the server names one: llama.cpp's
``llama-server`` reports ``model_path`` on ``GET /props``, llama-cpp-python's server uses
the file's path as the model id. When that path is a file on this machine (a server on
localhost), the digest is ``sha256:`` + the file's SHA-256 (memoised as for the embedded
teacher), so it changes exactly when the weights do.

**Options** use Ollama's names, as decode profiles do, and are sent under the field names
of the teacher's ``server:`` (``fdbuild.providers.openai_servers``): ``num_predict``
becomes ``max_tokens`` (a negative value, Ollama's "unbounded", sends none);
``repeat_penalty`` is ``repetition_penalty`` for vLLM and SGLang, ``repeat_penalty`` for
llama.cpp and llama-cpp-python. An option the server has no field for fails at load
time; here it fails the request (``unsupported_option``) as a safety net. Without
``server:`` the earlier mapping holds (``repeat_penalty`` -> ``repetition_penalty``,
everything else as-is, unchecked). ``extra_body`` is merged into every body verbatim
(a server's own options). ``format`` becomes ``response_format``; ``think`` as a string
becomes ``reasoning_effort``, as a bool ``chat_template_kwargs.enable_thinking``.

**Errors** (no retries here; the executor retries what is ``retryable``), as for Ollama:
HTTP 5xx, 429 and 499 are retryable (``http_<status>``); 404 is not
(``model_not_found``), nor is any other 4xx (``http_<status>``, with the server's
``error.message``); connection failures (``connection``) and timeouts (``timeout``) are
retryable; a reply that is not JSON is retryable, a JSON reply of the wrong shape is
not (``bad_response``); logprobs asked but none returned is not (``logprobs_unsupported``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx

from fdbuild.errors import ModelNotFound, ProviderError, ProviderUnavailable, TeacherCallError
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.providers.openai_servers import field_for, request_parts

__all__ = ["OpenAIProvider", "reported_digest", "request_body"]

log = logging.getLogger(__name__)

# Keys of a /models entry that may name the weights, best first, with their prefix.
DIGEST_KEYS = (("digest", ""), ("sha256", "sha256:"), ("revision", "rev:"))
# 4xx statuses worth another try (rate limited, request cancelled); every 5xx is too.
RETRYABLE_STATUSES = frozenset({429, 499})


class OpenAIProvider(Provider):
    """One model on an OpenAI-compatible server. No caching or retries (the executor's job)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str | None = None,
        revision: str | None = None,
        timeout_s: float = 240.0,
        server: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self.server = server
        self.extra_body = dict(extra_body or {})
        self.timeout_s = timeout_s
        headers = {"Accept": "application/json"}
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ProviderError(
                    f"openai teacher '{model}': environment variable {api_key_env} "
                    "(api_key_env) is not set or empty; export it with the server's API key"
                )
            # The key lives only in the client's default headers: never on self, never keyed.
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s))

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    async def resolve(self) -> TeacherIdentity:
        url = f"{self.base_url}/models"
        try:
            response = await self._client.get(url)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"cannot reach the OpenAI-compatible server at {url} ({exc!r}); start it, "
                "or fix the teacher's base_url"
            ) from exc
        if response.status_code >= 400:
            cls = ProviderUnavailable if response.status_code >= 500 else ProviderError
            raise cls(f"GET {url}: HTTP {response.status_code}: {error_message(response)}")
        entries = _model_entries(response)
        entry = next((e for e in entries if e.get("id") == self.model), None)
        if entry is None:
            listed = ", ".join(sorted(str(e.get("id")) for e in entries)) or "none"
            raise ModelNotFound(
                f"model '{self.model}' is not served at {self.base_url} (models available: "
                f"{listed}); load it on the server, or change the teacher's model"
            )
        return TeacherIdentity(
            provider=self.name,
            model=self.model,
            digest=await self._digest(entry),
            server_version=response.headers.get("server"),
            request=request_parts(self.server, self.extra_body),
        )

    async def _model_file(self, entry: dict[str, Any]) -> Path | None:
        """The served GGUF as a local file: ``/props`` ``model_path`` (llama-server), else
        a model id or ``root`` that is a path (llama-cpp-python's server, vLLM)."""
        candidates: list[Any] = []
        if self.server == "llamacpp":
            root = self.base_url.removesuffix("/v1")
            try:
                props = await self._client.get(f"{root}/props")
                if props.status_code == 200:
                    candidates.append(props.json().get("model_path"))
            except (httpx.HTTPError, ValueError, AttributeError):
                pass  # not a llama-server: no /props
        candidates += [entry.get("root"), entry.get("id")]
        for value in candidates:
            if isinstance(value, str) and value:
                path = Path(value).expanduser()
                if path.is_absolute() and path.is_file():
                    return path
        return None

    async def _digest(self, entry: dict[str, Any]) -> str:
        reported = reported_digest(entry)
        if reported is not None:
            return reported
        file = await self._model_file(entry)
        if file is not None:
            from fdbuild.providers.llamacpp import gguf_sha256

            return "sha256:" + await asyncio.to_thread(gguf_sha256, file)
        if self.revision:
            return f"rev:{self.revision}"
        log.warning(
            "openai teacher '%s' at %s reports no digest and no revision was given: cached "
            "generations will NOT be invalidated if its weights change; set the teacher's "
            "'revision' to version them",
            self.model,
            self.base_url,
        )
        return f"unversioned:{self.model}"

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        url = f"{self.base_url}/chat/completions"
        body = request_body(self.model, request, self.server, self.extra_body)
        start = time.perf_counter_ns()
        try:
            response = await self._client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise TeacherCallError(
                f"no answer from {url} within {self.timeout_s:g} s ({exc!r})",
                retryable=True,
                reason="timeout",
            ) from exc
        except httpx.TransportError as exc:
            raise TeacherCallError(
                f"lost the connection to {url} ({exc!r})", retryable=True, reason="connection"
            ) from exc
        if response.status_code >= 400:
            raise status_error(response, self.model)
        reply = parse_reply(response)
        if request.logprobs and reply.logprobs is None and reply.text:
            raise TeacherCallError(
                f"logprobs were requested but {url} returned none; use a server that "
                "supports them, or stop asking for logprobs",
                retryable=False,
                reason="logprobs_unsupported",
            )
        return dataclasses.replace(reply, total_duration_ns=time.perf_counter_ns() - start)

    async def aclose(self) -> None:
        await self._client.aclose()


def _model_entries(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(
            f"GET {response.url} did not return an OpenAI model list; "
            "is base_url the server's /v1 prefix?"
        ) from exc
    return [e for e in data if isinstance(e, dict)]


def reported_digest(entry: dict[str, Any]) -> str | None:
    """The first digest-like value in a /models entry (top level, then ``meta``)."""
    meta = entry.get("meta")
    for scope in (entry, meta if isinstance(meta, dict) else {}):
        for key, prefix in DIGEST_KEYS:
            value = scope.get(key)
            if not isinstance(value, str) or not value:
                continue
            if key == "digest" and ":" not in value:
                prefix = "sha256:" if len(value) == 64 else "digest:"
            return value if value.startswith(prefix) else prefix + value
    return None


def request_body(
    model: str,
    request: TeacherRequest,
    server: str | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for /chat/completions; the module docstring gives the mapping."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in request.messages],
        "stream": False,
    }
    for name, value in request.options.items():
        target = field_for(server, name)
        if target is None:
            raise TeacherCallError(
                f"server '{server}' has no request field for decode option '{name}'",
                retryable=False,
                reason="unsupported_option",
            )
        if name == "num_predict":
            if value is not None and value >= 0:
                body[target] = value
        else:
            body[target] = value
    fmt = request.format
    if fmt == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt},
        }
    elif fmt is not None:
        raise TeacherCallError(
            f"format must be 'json' or a JSON-Schema object, got {fmt!r}",
            retryable=False,
            reason="bad_request",
        )
    if isinstance(request.think, str):
        body["reasoning_effort"] = request.think
    elif isinstance(request.think, bool):
        body["chat_template_kwargs"] = {"enable_thinking": request.think}
    if request.logprobs:
        body["logprobs"] = True
        if request.top_logprobs is not None:
            body["top_logprobs"] = request.top_logprobs
    body.update(extra_body or {})
    return body


def parse_reply(response: httpx.Response) -> TeacherResponse:
    """A non-streaming chat completion -> TeacherResponse, or a bad_response error."""
    try:
        data = response.json()
    except ValueError as exc:  # e.g. a proxy's HTML error page: may pass
        raise TeacherCallError(
            f"{response.url} sent a reply that is not JSON: {exc}",
            retryable=True,
            reason="bad_response",
        ) from exc
    try:
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        logprobs = choice.get("logprobs") or {}
        # vLLM, SGLang and DeepSeek say reasoning_content; Ollama's /v1 says reasoning.
        thinking = message.get("reasoning_content") or message.get("reasoning") or None
        return TeacherResponse(
            text=message.get("content") or "",
            done_reason=choice.get("finish_reason"),
            thinking=thinking,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            logprobs=logprobs.get("content"),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise TeacherCallError(
            f"{response.url} sent a chat completion of the wrong shape ({exc!r})",
            retryable=False,
            reason="bad_response",
        ) from exc


def error_message(response: httpx.Response) -> str:
    """The server's own words: ``error.message``, vLLM's top-level ``message``, or the text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if data.get("message"):
            return str(data["message"])
    return response.text.strip()


def status_error(response: httpx.Response, model: str) -> TeacherCallError:
    """5xx, 429 and 499 may pass (crash, overload, rate limit); other 4xx will fail again."""
    status = response.status_code
    message = f"{response.url}, model '{model}': HTTP {status}: {error_message(response)}"
    if status == 404:
        return TeacherCallError(message, retryable=False, reason="model_not_found")
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    return TeacherCallError(message, retryable=retryable, reason=f"http_{status}")
