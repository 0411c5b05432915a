"""fdbuild: a declarative, content-addressed build system for LLM distillation datasets."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
