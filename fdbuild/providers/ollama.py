"""Teacher behind an Ollama server, through the official ``ollama.AsyncClient``.

**Identity.** ``resolve()`` reads ``GET /api/tags`` and takes the entry whose tag matches
(``qwen`` means ``qwen:latest``). Its ``digest`` is the SHA-256 of the model's manifest,
which covers the weights, the template and the Modelfile parameters: a re-pull to new
weights or an edited Modelfile changes it, so the generation key changes. ``/api/show``
has no digest. ``GET /api/version`` is recorded as ``server_version`` (not keyed).

**Requests.** ``chat(..., stream=False)``. Options go as a plain dict: ``ollama.Options``
silently drops keys it does not declare (``min_p``, ``draft_num_predict``), and what is
keyed must be what is sent. A non-streaming reply cannot end in a mid-stream error: the
server turns a runner failure into an HTTP 500 instead.

**Errors** (no retries here; the executor retries what is ``retryable``):

====================================================  =========  =====================
failure                                               retryable  reason
====================================================  =========  =====================
HTTP 5xx (500 crash, 503 queue full), 429, 499         yes        ``http_<status>``
error line inside a stream (status -1)                 yes        ``stream_error``
HTTP 404 (model gone since ``resolve``)                no         ``model_not_found``
other HTTP 4xx (bad option, no thinking, ...)          no         ``http_<status>``
connection refused or dropped                          yes        ``connection``
timeout                                                yes        ``timeout``
logprobs asked, none returned (Ollama < 0.12.11)       no         ``logprobs_unsupported``
====================================================  =========  =====================

``done_reason == "length"`` is returned, not raised: the executor records truncation.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.parse
from typing import Any, Literal

import httpx
import ollama
import pydantic

from fdbuild.errors import ModelNotFound, ProviderError, ProviderUnavailable, TeacherCallError
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse

__all__ = ["DEFAULT_HOST", "OllamaProvider", "normalize_host", "normalize_tag"]

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_PORT = 11434
LOGPROBS_MIN_VERSION = "0.12.11"
# 4xx statuses worth another try (rate limited, request cancelled); every 5xx is too.
RETRYABLE_STATUSES = frozenset({429, 499})


def normalize_host(host: str | None) -> str:
    """``$OLLAMA_HOST``-style value -> base URL, by the rules of the client's ``_parse_host``.

    ``host:port`` gets ``http://``; a bare host gets port 11434, ``http://h`` port 80 and
    ``https://h`` port 443; a path is kept. Unset or empty: ``$OLLAMA_HOST``, else
    ``http://localhost:11434``.
    """
    host = (host or os.environ.get("OLLAMA_HOST") or "").strip()
    if not host:
        return DEFAULT_HOST
    scheme, sep, hostport = host.partition("://")
    port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", host
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    split = urllib.parse.urlsplit(f"{scheme}://{hostport}")
    hostname = split.hostname or "127.0.0.1"
    try:
        if isinstance(ipaddress.ip_address(hostname), ipaddress.IPv6Address):
            hostname = f"[{hostname}]"
    except ValueError:
        pass  # a name, not an address
    base = f"{scheme}://{hostname}:{split.port or port}"
    path = split.path.strip("/")
    return f"{base}/{path}" if path else base


def normalize_tag(model: str) -> str:
    """Ollama's short name: ``qwen`` -> ``qwen:latest``; the default registry is dropped."""
    model = model.strip()
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if model.startswith(prefix):
            model = model[len(prefix) :]
            break
    if ":" not in model.rsplit("/", 1)[-1]:
        model += ":latest"
    return model


class OllamaProvider(Provider):
    """One model on one Ollama server. No caching or retries (the executor's job)."""

    name = "ollama"

    def __init__(
        self,
        model: str,
        host: str | None = None,
        timeout_s: float = 240.0,
        think: bool | str | None = None,
    ) -> None:
        self.model = normalize_tag(model)
        self.host = normalize_host(host)
        self.timeout_s = timeout_s
        self.think = think
        self._server_version: str | None = None
        # An explicit timeout: the client's default is none at all.
        self._client = ollama.AsyncClient(host=self.host, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"OllamaProvider(model={self.model!r}, host={self.host!r})"

    # -- resolve

    async def resolve(self) -> TeacherIdentity:
        try:
            listing = await self._client.list()
        except (ConnectionError, httpx.TransportError) as exc:
            raise self._unavailable(exc) from exc
        except ollama.ResponseError as exc:
            cls = ProviderUnavailable if exc.status_code >= 500 else ProviderError
            raise cls(
                f"Ollama at {self.host} refused to list its models "
                f"(HTTP {exc.status_code}: {exc.error}); is this an Ollama server?"
            ) from exc
        entry = self._find(listing)
        digest = (entry.digest or "").removeprefix("sha256:").lower()
        if not digest:
            raise ProviderError(
                f"Ollama at {self.host} lists '{self.model}' without a digest; "
                "fdbuild needs it to key cached generations"
            )
        self._server_version = await self._version()
        return TeacherIdentity(
            provider=self.name,
            model=self.model,
            digest=digest,
            server_version=self._server_version,
        )

    def _find(self, listing: ollama.ListResponse) -> ollama.ListResponse.Model:
        wanted = self.model.lower()
        for entry in listing.models:
            if entry.model and normalize_tag(entry.model).lower() == wanted:
                return entry
        available = ", ".join(sorted(m.model for m in listing.models if m.model)) or "none"
        raise ModelNotFound(
            f"model '{self.model}' is not on the Ollama server at {self.host} "
            f"(models available: {available}); run `ollama pull {self.model}` there, "
            "or change the teacher's model"
        )

    async def _version(self) -> str | None:
        """``GET /api/version``; the client has no method for it. Recorded, never keyed."""
        try:
            response = await self._client._client.get("/api/version")
            response.raise_for_status()
            version = response.json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return str(version) if version else None

    def _unavailable(self, exc: BaseException) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"cannot reach the Ollama server at {self.host} ({_describe(exc)}); "
            "start Ollama (`ollama serve`), or set OLLAMA_HOST or the target's "
            "teachers.<name>.host to where it runs"
        )

    # -- generate

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        fmt = _check_format(request.format)
        try:
            reply = await self._client.chat(
                model=self.model,
                messages=[dict(m) for m in request.messages],
                options=dict(request.options),  # never ollama.Options: it drops min_p
                format=fmt,
                think=request.think if request.think is not None else self.think,
                logprobs=True if request.logprobs else None,
                top_logprobs=request.top_logprobs if request.logprobs else None,
                stream=False,
            )  # None arguments are left out of the body by the client
        except ollama.ResponseError as exc:
            raise self._response_error(exc) from exc
        except httpx.TimeoutException as exc:
            raise TeacherCallError(
                f"no answer from Ollama at {self.host} within {self.timeout_s:g} s "
                f"({_describe(exc)})",
                retryable=True,
                reason="timeout",
            ) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise TeacherCallError(
                f"lost the connection to Ollama at {self.host} ({_describe(exc)})",
                retryable=True,
                reason="connection",
            ) from exc
        except pydantic.ValidationError as exc:
            raise TeacherCallError(
                f"Ollama at {self.host} sent a reply the client cannot parse: {exc}",
                retryable=False,
                reason="bad_response",
            ) from exc
        except json.JSONDecodeError as exc:  # e.g. a proxy's HTML error page
            raise TeacherCallError(
                f"Ollama at {self.host} sent a reply that is not JSON: {exc}",
                retryable=True,
                reason="bad_response",
            ) from exc
        response = _to_response(reply)
        if request.logprobs and response.logprobs is None and (response.text or reply.eval_count):
            raise self._no_logprobs()
        return response

    def _response_error(self, exc: ollama.ResponseError) -> TeacherCallError:
        status = exc.status_code
        where = f"Ollama at {self.host}, model '{self.model}'"
        if status == -1:
            return TeacherCallError(
                f"{where}: error in the reply stream: {exc.error}",
                retryable=True,
                reason="stream_error",
            )
        if status == 404:
            return TeacherCallError(
                f"{where}: HTTP 404: {exc.error}; run `ollama pull {self.model}`",
                retryable=False,
                reason="model_not_found",
            )
        retryable = status >= 500 or status in RETRYABLE_STATUSES
        return TeacherCallError(
            f"{where}: HTTP {status}: {exc.error}",
            retryable=retryable,
            reason=f"http_{status}",
        )

    def _no_logprobs(self) -> TeacherCallError:
        version = f" (it reports version {self._server_version})" if self._server_version else ""
        return TeacherCallError(
            f"logprobs were requested but Ollama at {self.host}{version} returned none; "
            f"the server must be Ollama >= {LOGPROBS_MIN_VERSION}: upgrade it, "
            "or stop asking for logprobs",
            retryable=False,
            reason="logprobs_unsupported",
        )

    async def aclose(self) -> None:
        await self._client.close()


def _to_response(reply: ollama.ChatResponse) -> TeacherResponse:
    """Map the client's ChatResponse; logprobs become plain dicts (the client drops bytes)."""
    logprobs = None
    if reply.logprobs is not None:
        logprobs = [lp.model_dump(exclude_none=True) for lp in reply.logprobs]
    return TeacherResponse(
        text=reply.message.content or "",
        done_reason=reply.done_reason,
        thinking=reply.message.thinking or None,
        prompt_tokens=reply.prompt_eval_count,
        completion_tokens=reply.eval_count,
        total_duration_ns=reply.total_duration,
        eval_duration_ns=reply.eval_duration,
        logprobs=logprobs,
    )


def _check_format(fmt: object) -> Literal["json"] | dict[str, Any] | None:
    """``fmt`` as the client's type; the client would raise a bare pydantic error, before
    sending anything."""
    if fmt is None or isinstance(fmt, dict):
        return fmt
    if fmt == "json":
        return "json"
    raise TeacherCallError(
        f"format must be 'json' or a JSON-Schema object, got {fmt!r}",
        retryable=False,
        reason="bad_request",
    )


def _describe(exc: BaseException) -> str:
    """``ConnectError: [Errno 111] Connection refused``; httpx messages can be empty."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
