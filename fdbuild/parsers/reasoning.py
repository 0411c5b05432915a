"""Removing a reasoning model's thinking from its reply, shared by every parser.

Reasoning models (Qwen3, DeepSeek-R1, ...) wrap their thinking in ``<think>`` style tags.
Whatever the reply format, the thinking is never the answer, so every parser strips it
first. Three shapes occur:

* a closed block ``<think>...</think>``: removed;
* an orphan closing tag (the chat template put the opening tag in the *prompt*): all that
  precedes it is thinking and is removed;
* an unclosed opening tag (the reply was cut off while thinking): all that follows it is
  unfinished thinking, so it is removed too. FastDistill removed only the marker and kept
  the reasoning text, which then leaked into the extracted SQL.
"""

from __future__ import annotations

import re

THINK_TAGS = ("think", "thinking", "analysis", "reasoning", "thought")

_TAGS = "|".join(THINK_TAGS)
_CLOSED_BLOCK = re.compile(rf"<(?P<tag>{_TAGS})\b[^>]*>.*?</(?P=tag)\s*>", re.I | re.S)
_CLOSE_TAG = re.compile(rf"</(?:{_TAGS})\s*>", re.I)
_OPEN_TAG = re.compile(rf"<(?:{_TAGS})\b[^>]*>", re.I)


def strip_reasoning(text: str) -> str:
    """The reply without its thinking (see the module docstring for the three shapes)."""
    text = _CLOSED_BLOCK.sub("", text)
    orphan_closes = list(_CLOSE_TAG.finditer(text))
    if orphan_closes:
        text = text[orphan_closes[-1].end() :]
    opening = _OPEN_TAG.search(text)
    if opening:
        text = text[: opening.start()]
    return text
