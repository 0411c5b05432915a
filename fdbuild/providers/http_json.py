"""One JSON ``GET`` over asyncio streams, for identity lookups on every build.

Why not the providers' HTTP clients: a no-op build must still ask the teacher which
weights stand behind its name (a changed digest must invalidate), and importing
``ollama`` + ``httpx`` (which pulls ``rich`` and ``click``) and building their TLS
contexts costs ~0.2 s, most of a no-op. Even ``urllib.request`` costs ~12 ms to import
(``http.client`` parses headers with the ``email`` package) and a worker thread per
call; asyncio, which the build runs on anyway, needs neither. One short ``GET`` with
``Connection: close`` is all the HTTP this needs: a status line, headers, and a body
sized by ``Content-Length``, chunked, or read to the end. Redirects are followed (as
the ``ollama`` client does). When a ``*_proxy`` variable applies to the URL's scheme the
request goes through ``urllib.request`` in a thread instead, which honours it and
``no_proxy`` as httpx does.

Failures are sorted into three exceptions so each provider can word them its own way:
``Unreachable`` (no complete HTTP answer: refused, reset, timed out, not HTTP),
``HttpStatus`` (an HTTP error status, with the server's ``error`` text when it sent JSON)
and ``NotJson`` (a 2xx whose body is not UTF-8 JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from fdbuild.aio import within

__all__ = ["HttpStatus", "NotJson", "Unreachable", "describe", "get_json"]

MAX_BODY = 64 << 20  # a model listing is kilobytes; never hold more than this in memory
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
NO_BODY = frozenset({204, 304})


class Unreachable(Exception):
    """No complete HTTP answer: ``cause`` is the socket-level (or protocol) error."""

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


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.x as this reader understands it."""


async def get_json(url: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    """``GET url`` and decode its JSON body, within ``timeout`` seconds in all."""
    sent = {"Accept": "application/json", **(headers or {})}
    if _proxied(url):
        body = await asyncio.to_thread(_urllib_get, url, timeout, sent)
    else:
        try:
            body = await within(_follow(url, sent), timeout)  # never loses a cancellation
        except asyncio.TimeoutError:
            raise Unreachable(TimeoutError(f"no answer within {timeout:g} s")) from None
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        snippet = body[:80].decode("utf-8", "replace")
        raise NotJson(f"{describe(exc)}; it begins {snippet!r}") from exc


async def _follow(url: str, headers: Mapping[str, str]) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        status, reply_headers, body = await _get(url, headers)
        location = reply_headers.get("location")
        if status in REDIRECTS and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if status >= 400:
            raise HttpStatus(status, _error_text(body))
        if not 200 <= status < 300:
            raise Unreachable(ProtocolError(f"unexpected HTTP {status}"))
        return body
    raise Unreachable(ProtocolError(f"more than {MAX_REDIRECTS} redirects"))


async def _get(url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    split = urllib.parse.urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise Unreachable(ProtocolError(f"not an http(s) URL: {url}"))
    tls = split.scheme == "https"
    port = split.port or (443 if tls else 80)
    context: Any = None
    if tls:
        import ssl

        context = ssl.create_default_context()
    target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {split.netloc.rpartition('@')[2]}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Accept-Encoding: identity", "Connection: close", "", ""]
    writer = None
    try:
        reader, writer = await asyncio.open_connection(split.hostname, port, ssl=context)
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        return await _read_reply(reader)
    except (OSError, EOFError, ValueError, ProtocolError) as exc:
        # ValueError: a header line over the stream's limit; EOFError: IncompleteReadError
        raise Unreachable(exc) from exc
    finally:
        if writer is not None:
            writer.close()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection without a reply")
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP reply: {status_line[:60]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        if not line:
            raise ConnectionResetError("the connection closed inside the headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
        if len(headers) > 200:
            raise ProtocolError("more than 200 headers")
    if status in NO_BODY or 100 <= status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, await _read_chunked(reader)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > MAX_BODY:
            raise ProtocolError(f"Content-Length {length[:20]!r}")
        return status, headers, await reader.readexactly(int(length))
    body = await reader.read(MAX_BODY + 1)  # Connection: close: the body ends with it
    while len(body) <= MAX_BODY and (more := await reader.read(MAX_BODY + 1 - len(body))):
        body += more
    if len(body) > MAX_BODY:
        raise ProtocolError(f"a reply larger than {MAX_BODY >> 20} MiB")
    return status, headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readline()).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise ProtocolError(f"a reply larger than {MAX_BODY >> 20} MiB")
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the chunk's CRLF


def _proxied(url: str) -> bool:
    """Whether a proxy variable applies to this URL's scheme (then urllib decides,
    ``no_proxy`` included)."""
    scheme = url.partition(":")[0].lower()
    names = (f"{scheme}_proxy", "all_proxy")
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in names)


def _urllib_get(url: str, timeout: float, headers: Mapping[str, str]) -> bytes:
    """The same GET through ``urllib.request`` (blocking; proxies from the environment)."""
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers), method="GET")
    opener = urllib.request.build_opener()  # reads the proxy variables now (urlopen caches)
    try:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        raise HttpStatus(exc.code, _error_text(exc.read(64 << 10))) from exc
    except urllib.error.URLError as exc:  # refused, no such host: the reason is the cause
        cause = exc.reason if isinstance(exc.reason, BaseException) else exc
        raise Unreachable(cause) from exc
    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, bad status line
        raise Unreachable(exc) from exc
    if len(body) > MAX_BODY:
        raise Unreachable(ProtocolError(f"a reply larger than {MAX_BODY >> 20} MiB"))
    return body


def _error_text(body: bytes) -> str:
    """The ``error`` field of a JSON error body (as Ollama sends), else the raw text."""
    text = body[: 64 << 10].decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text or "(no message)"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return text


def describe(exc: BaseException) -> str:
    """``ConnectionRefusedError: [Errno 111] Connection refused``; some messages are empty."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
