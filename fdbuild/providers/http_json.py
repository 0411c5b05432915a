"""One JSON ``GET`` through the standard library, for identity lookups on every build.

Why not the providers' HTTP clients: a no-op build must still ask the teacher which
weights stand behind its name (a changed digest must invalidate), and importing
``ollama`` + ``httpx`` (which pulls ``rich`` and ``click``) and building their TLS
contexts costs ~0.2 s, most of a no-op. ``urllib.request`` does the same lookup in a few
milliseconds and, like httpx's defaults, follows redirects and honours the
``*_proxy`` / ``no_proxy`` environment variables.

Failures are sorted into three exceptions so each provider can word them its own way:
``Unreachable`` (no HTTP answer at all: refused, reset, timed out, a bad status line),
``HttpStatus`` (an HTTP error status, with the server's ``error`` text when it sent JSON)
and ``NotJson`` (a 2xx whose body is not UTF-8 JSON).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["HttpStatus", "NotJson", "Unreachable", "get_json"]

MAX_BODY = 64 << 20  # a model listing is kilobytes; never hold more than this in memory


class Unreachable(Exception):
    """No HTTP answer: ``cause`` is the socket-level error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.cause = cause


class HttpStatus(Exception):
    """The server answered with an error status; ``error`` is its message."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error


class NotJson(Exception):
    """A 2xx reply whose body is not JSON (e.g. a proxy's HTML page)."""


def get_json(url: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    """``GET url`` and decode its JSON body. Blocking: call it through ``asyncio.to_thread``."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", **(headers or {})}, method="GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        raise HttpStatus(exc.code, _error_text(exc)) from exc
    except urllib.error.URLError as exc:  # refused, no such host: the reason is the cause
        cause = exc.reason if isinstance(exc.reason, BaseException) else exc
        raise Unreachable(cause) from exc
    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, bad status line
        raise Unreachable(exc) from exc
    if len(body) > MAX_BODY:
        raise NotJson(f"the reply is larger than {MAX_BODY >> 20} MiB")
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        snippet = body[:80].decode("utf-8", "replace")
        raise NotJson(f"{describe(exc)}; it begins {snippet!r}") from exc


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The ``error`` field of a JSON error body (as Ollama sends), else the raw text."""
    try:
        text = exc.read(64 << 10).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        text = ""
    try:
        data = json.loads(text)
    except ValueError:
        return text or str(exc.reason)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return text


def describe(exc: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] Connection refused``; some messages are empty."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
