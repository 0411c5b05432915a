"""Built-ins by name, as ``"module:attribute"`` strings imported on first use.

Checks, parsers and exporters are registered this way so that importing fdbuild (and
``fdbuild --version``) never pays for sqlglot, sqlite or pyarrow it does not use.
"""

from __future__ import annotations

import importlib
from typing import Any


def load(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
