"""YAML reading with positions, so every error can name file, line and key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from fdbuild.errors import SpecError


def read_yaml(path: Path) -> Any:
    """Round-trip load (keeps line numbers). Syntax errors name file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such target file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read target file ({exc})") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{path}{line}: invalid YAML: {problem}") from None
    except Exception as exc:  # ruamel raises several unrelated types for odd input
        raise SpecError(f"{path}: invalid YAML: {exc}") from None
    return data


def line_of(data: Any, loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest key of ``loc`` found in the loaded document.

    Elements of ``loc`` not present (pydantic inserts union tags such as the node kind)
    are skipped; a missing key reports its parent mapping's line.
    """
    line: int | None = None
    node = data
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            try:
                line = node.lc.key(part)[0] + 1
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            try:
                line = node.lc.item(part)[0] + 1
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        elif isinstance(node, (CommentedMap, CommentedSeq)) and line is None:
            line = node.lc.line + 1
    return line


def to_plain(data: Any) -> Any:
    """ruamel containers -> plain dicts and lists (for pydantic and hashing)."""
    if isinstance(data, dict):
        return {str(k): to_plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    return data


def parse_scalar(text: str) -> Any:
    """A ``--set`` value: YAML scalar rules (``3`` int, ``true`` bool, ``[a, b]`` list)."""
    yaml = YAML(typ="safe")
    try:
        value = yaml.load(text)
    except Exception:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value
