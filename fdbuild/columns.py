"""Names of the columns fdbuild itself adds to rows.

Columns starting with ``_`` are fdbuild's bookkeeping: exports leave them out unless
asked. ``_key_<node>`` holds the cache key of the row's result at that node (used by
``gc`` and ``diff``); ``_pass_<node>`` holds a gate's verdict.
"""

from __future__ import annotations

ID = "_id"
PARENT = "_parent"
PROMPT = "_prompt"
SYSTEM = "_system"
MESSAGES = "_messages"
"""A ``messages:`` node's whole conversation as sent (list of {role, content})."""
CANDIDATE = "candidate"
PROFILE = "profile"
COMPLETION = "completion"
DONE_REASON = "done_reason"
PARSE_ERROR = "parse_error"
LOGPROBS = "logprobs"
THINKING = "thinking"


def key_col(node: str) -> str:
    return f"_key_{node}"


def pass_col(node: str) -> str:
    return f"_pass_{node}"


def is_internal(column: str) -> bool:
    return column.startswith("_")


def pass_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith("_pass_")]
