"""Where an export may write: checked when the graph loads, before any node runs.

An export writes its file (or folder of files), ``<path>.manifest.json``,
``<path>.report.json``, the folder's ``README.md`` dataset card and temp files beside them. Every one of those paths must be:

* inside the project folder (the folder of ``fdbuild.lock`` and ``.fdbuild/``), unless
  the node says ``allow_outside: true``;
* never, even with ``allow_outside``: under ``.fdbuild/``, the lock, a loaded target
  file, a source file, a file a gate reads (``db:``) or a teacher's ``model_path``:
  an export must not destroy what the build reads or records;
* not a folder, and not a file another export of the same build writes.

``~`` is expanded (to the user's home, which is outside the project unless the project
is there, so it needs ``allow_outside``). Symlinks are resolved before the check, both
the file's own and its folders'; since a write may replace a symlink instead of following
it, both the resolved path and the link itself are checked. Each refusal is a
``SpecError`` (exit 2) at the node's ``path`` line; nothing has been written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from fdbuild.errors import SpecError
from fdbuild.project import LOCK_NAME, STATE_NAME

if TYPE_CHECKING:
    from fdbuild.spec.graph import Graph, GraphNode
    from fdbuild.spec.load import LoadedTarget


def export_base(node: GraphNode) -> Path:
    """The export's ``path``, ``~`` expanded, absolute (symlinks not resolved)."""
    path = Path(os.path.expanduser(node.spec.path))
    return path if path.is_absolute() else node.target.base_dir / path


def written_paths(node: GraphNode) -> list[Path]:
    """Every path the export may create or replace (before symlinks are resolved)."""
    from fdbuild.exports import exporter_class

    base = export_base(node)
    exporter = exporter_class(node)(node.spec)
    files = list(exporter.planned_files(base))
    names = getattr(exporter, "_names", None)  # mlx_jsonl: a folder of named files
    if callable(names):
        files += [base / name for name in names()]
    side = [base.with_name(base.name + suffix) for suffix in (".manifest.json", ".report.json")]
    side.append(base.parent / "README.md")  # the folder's dataset card (exports/card.py)
    return list(dict.fromkeys([*files, *side]))


def protected_files(graph: Graph) -> dict[Path, str]:
    """Resolved path -> what it is, for every file the build reads."""
    out: dict[Path, str] = {}
    for target in graph.targets.values():
        out.setdefault(target.path.resolve(), f"the target file {target.path.name}")
        for name, spec in target.spec.nodes.items():
            if spec.kind == "source":
                out.setdefault(
                    _resolve(target, spec.path),
                    f"the source file of node '{name}' ({target.path.name})",
                )
        for tname, teacher in target.spec.teachers.items():
            model_path = getattr(teacher, "model_path", None)
            if model_path:
                out.setdefault(_resolve(target, model_path), f"the model file of teacher '{tname}'")
    for node in graph.nodes.values():
        if node.check is not None:
            for param, path in node.check.file_deps().items():
                out.setdefault(
                    path.resolve(), f"the file read by gate '{node.ref}' (params.{param})"
                )
    return out


def _resolve(target: LoadedTarget, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else target.base_dir / path).resolve()


def check_export_paths(graph: Graph, root: Path, nodes: Iterable[GraphNode] | None = None) -> None:
    """Refuse, as a load error, every export path that breaks the rules above."""
    root = root.resolve()
    protected = protected_files(graph)
    claimed: dict[Path, GraphNode] = {}
    exports = [n for n in graph.nodes.values() if n.kind == "export"]
    for node in exports if nodes is None else nodes:
        for path in written_paths(node):
            for place in _places(path):
                problem = _problem(place, root, protected, node.spec.allow_outside)
                if problem is not None:
                    raise SpecError(_message(node, path, place, problem))
        place = export_base(node).resolve()
        other = claimed.setdefault(place, node)
        if other is not node:
            problem = f"is written by export '{other.ref}' too"
            raise SpecError(_message(node, export_base(node), place, problem))


def _places(path: Path) -> list[Path]:
    """Where a write to ``path`` may land: the resolved path, and the directory entry
    itself (an atomic replace swaps a symlink instead of writing through it)."""
    return list(dict.fromkeys([path.resolve(), path.parent.resolve() / path.name]))


def _problem(
    place: Path, root: Path, protected: dict[Path, str], allow_outside: bool
) -> str | None:
    state = root / STATE_NAME
    if place == state or place.is_relative_to(state):
        return f"is inside the project's state folder {state} (refused even with allow_outside)"
    if place == root / LOCK_NAME:
        return "is the project's fdbuild.lock (refused even with allow_outside)"
    what = protected.get(place) or _inside_protected_folder(place, protected)
    if what is not None:
        return f"is {what}: an export never overwrites what a build reads (refused even with allow_outside)"
    if not allow_outside and not place.is_relative_to(root):
        return (
            f"is outside the project folder {root}; set 'allow_outside: true' on the node to "
            "write there (the project folder is the one holding fdbuild.lock or .fdbuild/, "
            "found upwards from the current folder, or --root)"
        )
    if place.is_dir():
        return "is a folder"
    return None


def _inside_protected_folder(place: Path, protected: dict[Path, str]) -> str | None:
    """A source that is a folder (``format: hf``: a save_to_disk folder, Parquet shards)
    is read whole: a file written inside it would change the source's digest."""
    for folder, what in protected.items():
        if place.is_relative_to(folder) and folder.is_dir():
            return what.replace("the source file", "inside the source folder", 1)
    return None


def _message(node: GraphNode, path: Path, place: Path, problem: str) -> str:
    shown = repr(node.spec.path)
    written = Path(os.path.normpath(path))
    if written != Path(os.path.normpath(export_base(node))):
        shown += f" writes {written}, which"
    if place != written:
        shown += f" (resolves to {place})"
    elif node.spec.path.startswith("~"):
        shown += f" ({written})"
    return f"{node.where('path')}: nodes.{node.ref.node}.path: {shown} {problem}"
