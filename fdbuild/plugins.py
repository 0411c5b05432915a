"""Plugins: checks, parsers, exporters and providers found by name, the built-ins' way too.

A name written in a target (``check:``, ``parse:``, an export's ``format:``, a teacher's
``provider:``) is looked up in this order:

1. a built-in (the ``_BUILTIN`` dict of that kind's package);
2. an entry point of the kind's group (``fdbuild.checks``, ``fdbuild.parsers``,
   ``fdbuild.exports``, ``fdbuild.providers``), read only when the name is not built-in;
3. ``module:Name``, an importable module;
4. ``path/file.py:Name``, a project-local file, relative to the target file's folder.

What a plugin computes is keyed by what determines it: its declared ``version`` (an
entry point's class without one takes its distribution's version), and for a file its
source digest (``keyed_version``), so editing the file re-evaluates exactly its rows.
Built-ins are keyed as they always were. Anything that goes wrong while finding or
importing a plugin is a ``PluginError`` with a one-line message; the graph adds the
file:line:key of the name that asked for it.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.keys import digest_bytes, digest_text
from fdbuild.registry import load

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUPS = {
    "check": "fdbuild.checks",
    "parser": "fdbuild.parsers",
    "exporter": "fdbuild.exports",
    "provider": "fdbuild.providers",
}
"""Entry-point group of each plugin kind."""

SOURCE_ATTR = "plugin_source"
"""Class attribute set on a class loaded from a project-local file: its source digest."""


class PluginError(Exception):
    """A plugin could not be found or loaded; ``message`` is one line, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Kind:
    """One plugin kind: its name, base class, and built-ins (name -> ``module:attr``)."""

    name: str
    base: type
    builtins: dict[str, str]
    needs_version: bool = True

    @property
    def group(self) -> str:
        return GROUPS[self.name]


def resolve(kind: Kind, ref: str, base_dir: Path | None) -> Any:
    """The class ``ref`` names (see the module docstring for the lookup order)."""
    target = kind.builtins.get(ref)
    if target is not None:
        return load(target)
    point = _entry_point(kind.group, ref)
    if point is not None:
        return _from_entry_point(kind, ref, point)
    if ":" not in ref:
        raise PluginError(_unknown(kind, ref))
    where, _, attr = ref.rpartition(":")
    if not where or not attr:
        raise PluginError(f"{kind.name} '{ref}': expected module:Name or path/file.py:Name")
    if where.endswith(".py"):
        return _from_file(kind, ref, where, attr, base_dir)
    return _from_module(kind, ref, where, attr)


def keyed_version(obj: Any) -> str:
    """The version a check's or parser's results are keyed by: ``version``, plus the
    source digest for a class loaded from a project-local file (a class or an instance)."""
    cls: Any = obj if isinstance(obj, type) else type(obj)
    version = str(cls.version)
    source = getattr(cls, SOURCE_ATTR, None)
    return version if source is None else f"{version}+{source}"


def available(kind: Kind) -> list[str]:
    """Built-in names and the entry points installed for this kind."""
    return sorted({*kind.builtins, *(p.name for p in _entry_points(kind.group))})


def _unknown(kind: Kind, ref: str) -> str:
    return (
        f"unknown {kind.name} '{ref}' ({kind.name}s: {', '.join(available(kind))}; "
        "or module:Name, or ./file.py:Name relative to the target file)"
    )


@cache
def _entry_points(group: str) -> tuple[EntryPoint, ...]:
    """Read once per process: the installed distributions do not change during a build.
    Imported here: only a name that is not built-in pays for scanning them."""
    from importlib.metadata import entry_points

    return tuple(entry_points(group=group))


def _entry_point(group: str, name: str) -> EntryPoint | None:
    for point in _entry_points(group):
        if point.name == name:
            return point
    return None


def _from_entry_point(kind: Kind, ref: str, point: EntryPoint) -> Any:
    what = f"entry point '{ref}' ({point.value}, group {kind.group})"
    try:
        obj = point.load()
    except Exception as exc:  # noqa: BLE001 - a plugin's import can raise anything
        raise PluginError(f"cannot load {kind.name} {what}: {_one_line(exc)}") from None
    dist = getattr(point, "dist", None)
    fallback = getattr(dist, "version", None)
    return _checked(kind, ref, obj, what, fallback_version=fallback)


def _from_module(kind: Kind, ref: str, module: str, attr: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(
            f"cannot import {kind.name} '{ref}': module '{module}': {_one_line(exc)}"
        ) from None
    obj = _attr(kind, ref, mod, attr, f"module '{module}'")
    return _checked(kind, ref, obj, f"'{ref}'")


_FILE_MODULES: dict[str, types.ModuleType] = {}


def _from_file(kind: Kind, ref: str, file: str, attr: str, base_dir: Path | None) -> Any:
    path = Path(file).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    try:
        source = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        raise PluginError(f"{kind.name} '{ref}': cannot read {path}: {reason}") from None
    digest = digest_bytes(source)
    # a unique module per path and content: an edited file is a new module, never a reload
    name = "fdbuild_plugin_" + digest_text(f"{path}\0{digest}").removeprefix("x3:")[:24]
    module = _FILE_MODULES.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__file__ = str(path)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            code = compile(source, str(path), "exec")
            exec(code, module.__dict__)  # the bytes just hashed, not a re-read of the file
        except Exception as exc:  # noqa: BLE001
            del sys.modules[name]
            raise PluginError(f"cannot import {kind.name} '{ref}': {_one_line(exc)}") from None
        _FILE_MODULES[name] = module
    obj = _attr(kind, ref, module, attr, str(path))
    cls = _checked(kind, ref, obj, f"'{ref}'", default_name=f"{path.name}:{attr}")
    if cls.__module__ == name:  # defined in this file (not imported into it)
        setattr(cls, SOURCE_ATTR, digest)
    return cls


def _attr(kind: Kind, ref: str, module: Any, attr: str, where: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{kind.name} '{ref}': {where} has no attribute '{attr}'") from None
    return obj


def _checked(
    kind: Kind,
    ref: str,
    obj: Any,
    what: str,
    fallback_version: str | None = None,
    default_name: str | None = None,
) -> Any:
    """``obj`` must be a subclass of the kind's base class, with its own ``version``."""
    if not (isinstance(obj, type) and issubclass(obj, kind.base)):
        shown = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        raise PluginError(
            f"{kind.name} {what} is {'class' if isinstance(obj, type) else 'a'} {shown}, "
            f"not a subclass of {kind.base.__module__}.{kind.base.__qualname__}"
        )
    cls: Any = obj
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise PluginError(f"{kind.name} {what} does not implement {missing}")
    if kind.needs_version and not _declares(cls, "version"):
        if fallback_version is None:
            raise PluginError(
                f"{kind.name} {what} declares no 'version' (a class attribute, e.g. "
                'version = "1"; its results are keyed by it)'
            )
        cls.version = fallback_version
    if not _declares(cls, "name"):  # named by the class itself, not by the ref used
        cls.name = default_name or f"{cls.__module__}:{cls.__qualname__}"
    return obj


def _declares(cls: type, attr: str) -> bool:
    """Whether the plugin sets ``attr`` itself: one inherited from a built-in of fdbuild
    (a subclass of ``RulesCheck``) does not count, or it would share the built-in's keys."""
    owner = next((c for c in cls.__mro__ if attr in c.__dict__), None)
    return owner is not None and not owner.__module__.startswith("fdbuild.")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
