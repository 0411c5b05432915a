"""Row-cache records with their own checksum.

A record is stored as bytes (diskcache keeps bytes as a raw BLOB, not pickled again)::

    b"fdr1" + xxh3_128(key + b"\\0" + payload) (16 bytes) + payload

where ``payload`` is the record pickled (protocol 5). The checksum covers the key, so a
record moved under another key fails too. Checking is one xxh3 pass over a few hundred
bytes (~1 microsecond, against ~10 for the SQLite lookup itself); ``has`` checks without
unpickling, ``get`` checks then unpickles.

Records written before checksums existed (a plain dict, pickled by diskcache) are still
read as they are: there is no checksum to check them against (only that their text is
valid Unicode). ``fdbuild doctor`` counts them
and ``doctor --repair`` rewrites them with a checksum.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import xxhash

MAGIC = b"fdr1"
_SUM = 16
_HEAD = len(MAGIC) + _SUM


class RecordDamaged(Exception):
    """Internal: a record failed its checksum or does not unpickle (never leaves the store)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _sum(full_key: str, payload: bytes | memoryview) -> bytes:
    h = xxhash.xxh3_128(full_key.encode("utf-8"))
    h.update(b"\0")
    h.update(payload)
    return h.digest()


def encode(full_key: str, record: dict[str, Any]) -> bytes:
    payload = pickle.dumps(record, protocol=5)
    return MAGIC + _sum(full_key, payload) + payload


def is_legacy(value: Any) -> bool:
    """A record from before checksums: a plain dict."""
    return isinstance(value, dict)


def intact(full_key: str, value: Any) -> str:
    """Empty when the stored value passes its checksum (or is a legacy dict), else why not."""
    if is_legacy(value):
        return "" if _valid_unicode(value) else "holds text that is not valid Unicode"
    if not isinstance(value, bytes) or len(value) < _HEAD or not value.startswith(MAGIC):
        return f"not a fdbuild record ({type(value).__name__})"
    view = memoryview(value)
    if _sum(full_key, view[_HEAD:]) != view[len(MAGIC) : _HEAD]:
        return "checksum mismatch"
    return ""


def _valid_unicode(record: dict[str, Any]) -> bool:
    """A legacy record may hold a lone surrogate (older versions cached such replies;
    new records never do, the teacher pool refuses them). One C-speed encode; such a
    record is damaged, so ``has`` says miss and the teacher is asked again at once."""
    try:
        json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def decode(full_key: str, value: Any) -> dict[str, Any]:
    """The record, checked; raises ``RecordDamaged``."""
    why = intact(full_key, value)
    if why:
        raise RecordDamaged(why)
    if is_legacy(value):
        return value
    try:
        record = pickle.loads(memoryview(value)[_HEAD:])
    except Exception as exc:  # a checksum collision or a writer bug: still unusable
        raise RecordDamaged(f"does not unpickle ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise RecordDamaged(f"not a mapping ({type(record).__name__})")
    return record
