"""``judge``: a teacher scores each row with a judging prompt.

The reply is parsed robustly ("Score: 7/10", "7", "8.5 out of 10", ``{"score": 7}``)
and normalised to 0..1 by ``scale`` (or by the ``/N`` the judge wrote). An unparsable
reply is a recorded failure, never a zero, and is not cached: the next build asks again.

The judge's reply is cached as a generation (keyed like any generation: judge teacher
identity, rendered messages, options), and the evaluation is cached by the row fields
the template reads. A ``keep: {score: {min: X}}`` change therefore re-judges nothing;
a template edit re-judges but regenerates no candidate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from fdbuild.parsers.base import ParseFailure
from fdbuild.providers.base import TeacherRequest
from fdbuild.spec.template import parse_template

DEFAULT_SYSTEM = (
    "You are a strict grader. Judge the candidate answer. Reply with one line: "
    "'Score: N/10' where N is an integer from 0 (wrong) to 10 (perfect)."
)

_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.I)
_LABELLED = re.compile(r"(?:score|rating|grade)\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", re.I)
_NUMBER = re.compile(r"^\s*\**\s*(-?\d+(?:\.\d+)?)\s*\**\s*\.?\s*$")


class JudgeParams(CheckParams):
    teacher: str = Field(description="Name of a teacher in this target's `teachers:`.")
    template: str = Field(min_length=1, description="Judging prompt; {column} placeholders.")
    system: str = DEFAULT_SYSTEM
    scale: float = Field(10.0, gt=0, description="The judge's maximum score (normalised to 1).")
    decode: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.0, "seed": 0})


class JudgeCheck(Check[JudgeParams]):
    name: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    Params = JudgeParams
    outputs: ClassVar[Mapping[str, str]] = {
        "score": "double",
        "judge_raw": "double",
        "judge_reply": "string",
    }
    needs_teacher: ClassVar[bool] = True

    def __init__(self, params: JudgeParams, base_dir: Any) -> None:
        super().__init__(params, base_dir)
        self.template = parse_template(params.template)
        self.system_tpl = parse_template(params.system)

    def reads(self) -> Sequence[str]:
        return list(dict.fromkeys(self.template.columns + self.system_tpl.columns))

    def request_for(self, row: Mapping[str, Any]) -> TeacherRequest:
        from fdbuild.nodes.generate import make_request, messages_for

        messages = messages_for(self.system_tpl.render(row), self.template.render(row))
        return make_request(messages, dict(self.params.decode), 0, None, None)

    def generation_key(self, identity: dict[str, Any], request: TeacherRequest) -> str:
        from fdbuild.nodes.generate import generation_key

        return generation_key(identity, request, 0)

    def parse_reply(self, text: str) -> dict[str, Any]:
        raw, scale = parse_score(text, self.params.scale)
        return {"score": round(raw / scale, 6), "judge_raw": raw, "judge_reply": text}


def parse_score(text: str, default_scale: float) -> tuple[float, float]:
    """(raw score, scale). Raises ParseFailure for no score or one out of range."""
    raw, scale = _find(text, default_scale)
    if raw is None:
        raise ParseFailure("unparsable", text[:200])
    if not 0 <= raw <= scale:
        raise ParseFailure("out_of_range", f"{raw} not in 0..{scale}")
    return raw, scale


def _find(text: str, default_scale: float) -> tuple[float | None, float]:
    stripped = text.strip()
    obj = _json_score(stripped)
    if obj is not None:
        return obj, default_scale
    match = _FRACTION.search(stripped)
    if match:
        return float(match.group(1)), float(match.group(2))
    match = _LABELLED.search(stripped)
    if match:
        return float(match.group(1)), default_scale
    match = _NUMBER.match(stripped)
    if match:
        return float(match.group(1)), default_scale
    return None, default_scale


def _json_score(text: str) -> float | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if isinstance(obj, dict):
        for key in ("score", "rating", "grade"):
            value = obj.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None
