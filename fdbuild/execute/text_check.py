"""Is a teacher reply (or a cached record) valid Unicode? Lone surrogates are not.

JSON lets a server send ``"\\ud800"``; Python decodes it to a ``str`` holding a lone
surrogate, which no UTF-8 writer accepts: canonical JSON for a key, Parquet for an
artifact and the export all fail on it. So such a reply never enters the cache: it is a
per-row failure ``invalid_text``. A record cached by an older fdbuild that holds one is
treated as a miss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

INVALID_TEXT = "invalid_text"


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_record(record: Any) -> str | None:
    """Where ``record`` holds invalid Unicode, or None. One C-speed JSON encode for the
    common, valid case; the walk only when it fails."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        return None
    except (UnicodeEncodeError, TypeError, ValueError):
        return first_invalid(record)


def first_invalid(value: Any, where: str = "") -> str | None:
    """The path of the first string that is not valid Unicode (``text``,
    ``logprobs[3].token``), or None when every string in ``value`` is valid."""
    if isinstance(value, str):
        return None if _valid(value) else (where or "text")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not _valid(key):
                return f"{where}.<key>" if where else "<key>"
            found = first_invalid(item, f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = first_invalid(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def describe_invalid(record: Mapping[str, Any], where: str) -> str:
    """A failure detail that shows the bad spot without the unencodable character."""
    text = record.get("text")
    shown = repr(text[:120]) if isinstance(text, str) else "?"
    return f"the reply's {where} is not valid Unicode (a lone surrogate); text: {shown}"
