"""An example fdbuild plugin package: ``check: length_ratio`` (docs/plugins.md).

Installed (``pip install examples/plugin_example``), it registers the entry point
``length_ratio`` in the group ``fdbuild.checks``; a target then writes
``check: length_ratio`` as if it were a built-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field, model_validator

from fdbuild.checks.base import Check, CheckParams


class LengthRatioParams(CheckParams):
    text: str = Field("completion", description="Column whose length is measured.")
    reference: str = Field("prompt", description="Column it is measured against.")
    min_ratio: float = Field(0.0, ge=0, description="A smaller ratio is 'too_short'.")
    max_ratio: float | None = Field(None, ge=0, description="A larger ratio is 'too_long'.")

    @model_validator(mode="after")
    def _ordered(self) -> LengthRatioParams:
        if self.max_ratio is not None and self.max_ratio < self.min_ratio:
            raise ValueError(f"max_ratio ({self.max_ratio}) < min_ratio ({self.min_ratio})")
        return self


class LengthRatio(Check[LengthRatioParams]):
    """``len(text) / len(reference)`` in characters, and whether it is within bounds.

    A reply far longer than its question is often rambling; one far shorter is often
    truncated. An empty reference gives a null ratio and ``ratio_reason: no_reference``.
    """

    name = "length_ratio"
    version = "1"  # bump when evaluate() changes: cached evaluations are keyed by it
    Params = LengthRatioParams
    outputs = {"length_ratio": "double", "ratio_reason": "string"}

    def reads(self) -> Sequence[str]:
        return [self.params.text, self.params.reference]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        text = str(row.get(self.params.text) or "")
        reference = str(row.get(self.params.reference) or "")
        if not reference:
            return {"length_ratio": None, "ratio_reason": "no_reference"}
        ratio = round(len(text) / len(reference), 6)
        if ratio < self.params.min_ratio:
            reason = "too_short"
        elif self.params.max_ratio is not None and ratio > self.params.max_ratio:
            reason = "too_long"
        else:
            reason = "ok"
        return {"length_ratio": ratio, "ratio_reason": reason}
