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
    parts = []
    if old.get("model") != new.get("model"):
        parts.append(f"model {old.get('model')} -> {new.get('model')}")
    if old.get("digest") != new.get("digest"):
        parts.append(f"digest {str(old.get('digest'))[:12]} -> {str(new.get('digest'))[:12]}")
    if old.get("provider") != new.get("provider"):
        parts.append(f"provider {old.get('provider')} -> {new.get('provider')}")
    return "teacher changed: " + ", ".join(parts) if parts else "teacher changed"
