"""Why a node recomputes: compare its recipe with the one the lock recorded (STYLE H4)."""

from __future__ import annotations

from typing import Any

from fdbuild.keys import changed_parts
from fdbuild.lockfile import lock_view

_WORDS = {
    "template": "rendered prompt changed (template edited)",
    "template_digest": "rendered prompt changed (template edited)",
    "system": "system prompt changed",
    "system_digest": "system prompt changed",
    "teacher": "teacher changed",
    "decode": "decode options changed",
    "profiles": "decode profiles changed",
    "n": "candidate count n changed",
    "format": "output format changed",
    "think": "think setting changed",
    "parse": "parser changed",
    "parse_options": "parser options changed",
    "parse_version": "parser code changed",
    "file_digest": "source file changed",
    "path": "source path changed",
    "id": "id column changed",
    "params": "check params changed",
    "files": "a file the check reads changed",
    "check": "check changed",
    "check_version": "check code changed",
    "judge_teacher": "judge teacher changed",
    "keep": "keep rule changed (verdicts re-applied, nothing re-evaluated)",
    "gates": "selected gates changed",
    "columns": "export columns changed",
    "options": "export options changed",
}


def explain(
    previous: dict[str, Any] | None, recipe: dict[str, Any], inputs: list[str | None]
) -> list[str]:
    """Human reasons, empty when nothing changed since the recorded run."""
    if previous is None:
        return ["new node (no earlier run in fdbuild.lock)"]
    reasons = []
    old_view, new_view = previous.get("recipe", {}), lock_view(recipe)
    for part in changed_parts(old_view, new_view):
        if part == "teacher":
            reasons.append(
                _teacher_reason(old_view.get("teacher") or {}, new_view.get("teacher") or {})
            )
        else:
            reasons.append(_WORDS.get(part, f"{part} changed"))
    if previous.get("input_digests") != inputs:
        reasons.append("input rows changed")
    return list(dict.fromkeys(reasons))


def _teacher_reason(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Digests first: they name the weights. A name shows only where it is keyed."""
    parts = []
    if "model" in new and old.get("model") != new.get("model"):
        parts.append(f"model {old.get('model')} -> {new.get('model')}")
    if old.get("digest") != new.get("digest"):
        parts.append(f"digest {show_digest(old.get('digest'))} -> {show_digest(new.get('digest'))}")
    if old.get("provider") != new.get("provider"):
        parts.append(f"provider {old.get('provider')} -> {new.get('provider')}")
    if not parts and "model" in old and "model" not in new:
        return (
            "teacher key changed: a GGUF teacher is keyed by its file's digest alone now, "
            f"not its name ({old.get('model')}); same digest {show_digest(new.get('digest'))}"
        )
    return "teacher changed: " + ", ".join(parts) if parts else "teacher changed"


def show_digest(digest: Any, hex_digits: int = 12) -> str:
    """A digest shortened without garbling it: only a hex digest is cut (after its
    ``algo:`` prefix, which stays); ``rev:...`` or ``unversioned:...`` show whole."""
    text = str(digest)
    prefix, sep, rest = text.rpartition(":")
    if len(rest) > hex_digits and all(c in "0123456789abcdef" for c in rest.lower()):
        return f"{prefix}{sep}{rest[:hex_digits]}"
    return text
