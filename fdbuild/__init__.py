"""fdbuild: a declarative, content-addressed build system for LLM distillation datasets.

The public API (anything else may change without notice)::

    from fdbuild import build, BuildOptions, load_graph, Override

    outcome = build([Path("targets/text2sql_sft.yaml")], options=BuildOptions(dry_run=True))
    for run in outcome.runs:
        print(run.summary())

Names are imported lazily so that ``fdbuild --version`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BuildOptions": "fdbuild.execute.context",
    "BuildOutcome": "fdbuild.execute.build",
    "FdbuildError": "fdbuild.errors",
    "Override": "fdbuild.spec.load",
    "SpecError": "fdbuild.errors",
    "build": "fdbuild.execute.build",
    "canonical_json": "fdbuild.keys",
    "content_hash": "fdbuild.keys",
    "diff_runs": "fdbuild.diff.runs",
    "load_graph": "fdbuild.spec.graph",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fdbuild' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
