"""YAML reading with positions, so every error can name file, line and key, and with
bounds, so a small hostile file cannot take minutes or gigabytes to load.

Two limits, checked while the document is composed (before anything is built from it):

* nesting: at most ``MAX_DEPTH`` levels of mappings and sequences (a target needs about
  eight; 5,000 levels used to recurse for seconds before failing);
* size: at most ``MAX_NODES`` values once every alias is expanded. An alias costs the
  size of what it names, so a "billion laughs" file (nine anchors of nine aliases each,
  under 600 bytes, 387 million values expanded) fails at once instead of growing without
  bound in ``to_plain`` and validation. An alias to a collection that contains it (a
  recursive structure) is refused too: nothing downstream can walk it.

Both are ``invalid YAML`` errors naming the file and the line where the limit was passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner, Scanner, ScannerError

from fdbuild.errors import SpecError

MAX_DEPTH = 100
MAX_NODES = 100_000


class BoundedComposer(Composer):
    """ruamel's composer, counting nesting depth and the expanded size of the document."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._level = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # an unknown alias is ruamel's own error
                if isinstance(target, (MappingNode, SequenceNode)) and target.end_mark is None:
                    raise ComposerError(
                        None,
                        None,
                        f"alias *{event.anchor} refers to a collection that contains it "
                        "(recursive structures are not allowed)",
                        event.start_mark,
                    )
                self._count(self._size(target), event)
            return super().compose_node(parent, index)
        self._level += 1
        if self._level > MAX_DEPTH:
            raise ComposerError(
                None,
                None,
                _too_deep(),
                event.start_mark,
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._level -= 1
        self._count(1, event)
        return node

    def _count(self, size: int, event: Any) -> None:
        self._expanded += size
        if self._expanded > MAX_NODES:
            raise ComposerError(
                None,
                None,
                f"more than {MAX_NODES:,} values once aliases are expanded "
                "(fdbuild's limit for target files; an alias bomb?)",
                event.start_mark,
            )

    def _size(self, node: Node) -> int:
        """Values in ``node`` with every alias inside it expanded (memoised: a node is
        complete, hence fixed, by the time an alias can name it)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size


class _FlowDepth:
    """Refuses the ``[`` or ``{`` that opens flow level ``MAX_DEPTH + 1`` as it is
    scanned. Needed besides the composer's check: the scanner looks ahead for a possible
    ``key:`` at every open flow level, so deep flow nesting is quadratic before the
    composer sees its first node (5,000 ``[`` took seconds)."""

    flow_level: int
    reader: Any

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, _too_deep(), self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)  # type: ignore[misc]


class _BoundedRoundTripScanner(_FlowDepth, RoundTripScanner):
    pass


class _BoundedScanner(_FlowDepth, Scanner):
    pass


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels (fdbuild's limit for target files)"


def bounded_yaml(typ: str = "rt") -> YAML:
    """A ruamel loader with the depth and alias limits (pure Python: the C loader has
    its own scanner and composer, which cannot be bounded)."""
    yaml = YAML(typ=typ, pure=True)
    yaml.Scanner = _BoundedRoundTripScanner if typ == "rt" else _BoundedScanner
    yaml.Composer = BoundedComposer
    return yaml


def read_yaml(path: Path) -> Any:
    """Round-trip load (keeps line numbers). Syntax errors name file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such target file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read target file ({exc})") from None
    yaml = bounded_yaml("rt")
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
    yaml = bounded_yaml("safe")
    try:
        value = yaml.load(text)
    except Exception:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value
