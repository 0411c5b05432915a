"""Checks and parsers sent to another process, by value: what a worker needs to rebuild them.

A check object is not sent as such: it may hold open SQLite connections and locks, and
its class may come from a project-local plugin file (``./checks.py:Name``), a module no
other process can import. A ``Shipment`` holds instead:

* the class, by reference (module and qualified name), plus the plugin file's source
  bytes when the class came from one (the worker runs them under the same module name,
  as ``fdbuild.plugins`` did; the bytes are those whose digest keys the results);
* the params (or a parser's options) and the base folder, pickled;
* for a cluster, the content of every file the check depends on (``file_deps()``, e.g.
  ``sqlite_exec``'s ``db``): the worker writes them to a temporary folder of its own and
  points the params there. A Ray worker never reads the project or ``.fdbuild/``.

A worker builds each shipment once (``built``, per process, by token) and evaluates
batches with it. A shipment that cannot be rebuilt there (an import error, a refused
param) makes the batch answer ``Unavailable``: the driver then runs that check inline.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import pickle
import shutil
import sys
import tempfile
import threading
import types
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fdbuild.executors.base import Evaluated, Parsed, error_text, evaluate_all, parse_all
from fdbuild.keys import digest_bytes
from fdbuild.plugins import SOURCE_ATTR


class NotShippable(Exception):
    """This check or parser cannot be rebuilt in another process; the message says why."""


@dataclass(frozen=True)
class ClassRef:
    module: str
    qualname: str
    source: bytes | None = None
    """A project-local plugin file's bytes (``source_path`` names it, for tracebacks)."""
    source_path: str | None = None


@dataclass(frozen=True)
class Shipment:
    """A check or parser, rebuildable in another process (see the module docstring)."""

    kind: Literal["check", "parser"]
    cls: ClassRef
    payload: bytes
    """pickle of ``(params, base_dir)`` for a check, of ``options`` for a parser."""
    files: Mapping[str, tuple[str, bytes]] = field(default_factory=dict)
    """param -> (file name, content): files sent by value (a cluster's workers)."""
    token: str = ""
    """Identifies the shipment: a worker builds each token once."""


@dataclass(frozen=True)
class Unavailable:
    """The worker could not rebuild the shipment; ``reason`` says why."""

    reason: str


def class_ref(cls: type) -> ClassRef:
    """How another process finds ``cls``; ``NotShippable`` when it cannot."""
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise NotShippable(f"class {module}.{qualname} cannot be imported by another process")
    source_digest = getattr(cls, SOURCE_ATTR, None)
    mod = sys.modules.get(module)
    if source_digest is not None and module.startswith("fdbuild_plugin_"):
        path = getattr(mod, "__file__", None)
        if not path:
            raise NotShippable(f"plugin module {module} has no file")
        try:
            source = Path(path).read_bytes()
        except OSError as exc:
            raise NotShippable(f"cannot read plugin file {path}: {exc.strerror}") from None
        if digest_bytes(source) != source_digest:
            raise NotShippable(f"plugin file {path} changed since it was loaded")
        return ClassRef(module, qualname, source, path)
    if _resolve(module, qualname) is not cls:
        raise NotShippable(f"{module}.{qualname} does not import as the same class")
    return ClassRef(module, qualname)


def ship_check(check: Any, *, by_value: bool) -> Shipment:
    """A shipment of ``check``. ``by_value``: also send the content of its files (for
    workers that do not share the driver's disk), pointed to by their params."""
    ref = class_ref(type(check))
    files: dict[str, tuple[str, bytes]] = {}
    if by_value:
        fields = type(check.params).model_fields
        for param, path in check.file_deps().items():
            if param not in fields:
                raise NotShippable(f"file param '{param}' is not a top-level param")
            files[param] = (Path(path).name, Path(path).read_bytes())
    try:
        payload = pickle.dumps((check.params, str(check.base_dir)))
    except Exception as exc:  # noqa: BLE001 - whatever pickling a plugin's params raises
        raise NotShippable(f"params do not pickle: {error_text(exc)}") from None
    return _sealed(Shipment("check", ref, payload, files))


def ship_parser(parser: Any) -> Shipment:
    """A shipment of ``parser`` (a parser is its class and its options)."""
    ref = class_ref(type(parser))
    try:
        payload = pickle.dumps(dict(parser.options))
    except Exception as exc:  # noqa: BLE001
        raise NotShippable(f"parse options do not pickle: {error_text(exc)}") from None
    return _sealed(Shipment("parser", ref, payload))


def _sealed(shipment: Shipment) -> Shipment:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((shipment.kind, shipment.cls.module, shipment.cls.qualname)).encode())
    h.update(shipment.cls.source or b"")
    h.update(shipment.payload)
    for param, (name, content) in sorted(shipment.files.items()):
        h.update(f"{param}\0{name}\0".encode())
        h.update(hashlib.blake2b(content, digest_size=16).digest())
    return Shipment(shipment.kind, shipment.cls, shipment.payload, shipment.files, h.hexdigest())


# --- the worker side -------------------------------------------------------------------

_BUILT: OrderedDict[str, Any] = OrderedDict()
_BUILT_MAX = 16
_LOCK = threading.Lock()
_FILES_DIR: Path | None = None


def run_checks(
    shipment: Shipment, rows: Sequence[Mapping[str, Any]]
) -> list[Evaluated] | Unavailable:
    """A worker's task: evaluate ``rows`` with the shipped check, in order."""
    check = built(shipment)
    if isinstance(check, Unavailable):
        return check
    return evaluate_all(check, rows)


def run_parses(shipment: Shipment, texts: Sequence[str]) -> list[Parsed] | Unavailable:
    """A worker's task: parse ``texts`` with the shipped parser, in order."""
    parser = built(shipment)
    if isinstance(parser, Unavailable):
        return parser
    return parse_all(parser, texts)


def built(shipment: Shipment) -> Any:
    """The check or parser of ``shipment``, built once per process (the latest 16 kept;
    an evicted check is closed), or ``Unavailable``."""
    with _LOCK:
        obj = _BUILT.get(shipment.token)
        if obj is not None:
            _BUILT.move_to_end(shipment.token)
            return obj
    try:
        obj = _build(shipment)
    except Exception as exc:  # noqa: BLE001 - the driver falls back to inline
        return Unavailable(error_text(exc))
    with _LOCK:
        _BUILT[shipment.token] = obj
        evicted = _BUILT.popitem(last=False)[1] if len(_BUILT) > _BUILT_MAX else None
    if evicted is not None and hasattr(evicted, "close"):
        evicted.close()
    return obj


def _build(shipment: Shipment) -> Any:
    cls = _load_class(shipment.cls)
    if shipment.kind == "parser":
        return cls(pickle.loads(shipment.payload))
    params, base_dir = pickle.loads(shipment.payload)
    if shipment.files:
        folder = _materialise(shipment)
        params = params.model_copy(
            update={p: str(folder / p / name) for p, (name, _) in shipment.files.items()}
        )
        base_dir = str(folder)
    return cls(params, Path(base_dir))


def _load_class(ref: ClassRef) -> Any:
    if ref.source is not None and ref.module not in sys.modules:
        module = types.ModuleType(ref.module)
        module.__file__ = ref.source_path
        sys.modules[ref.module] = module  # pickle finds the plugin's params class by name
        try:
            exec(compile(ref.source, ref.source_path or ref.module, "exec"), module.__dict__)
        except BaseException:
            del sys.modules[ref.module]
            raise
    cls = _resolve(ref.module, ref.qualname)
    if ref.source is not None:
        setattr(cls, SOURCE_ATTR, digest_bytes(ref.source))
    return cls


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _materialise(shipment: Shipment) -> Path:
    """The shipment's files, written once into this process's temporary folder."""
    global _FILES_DIR
    with _LOCK:
        if _FILES_DIR is None:
            _FILES_DIR = Path(tempfile.mkdtemp(prefix="fdbuild-worker-"))
            atexit.register(shutil.rmtree, _FILES_DIR, True)
        folder = _FILES_DIR / shipment.token
    if not folder.exists():
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
        for param, (name, content) in shipment.files.items():
            (staging / param).mkdir()
            (staging / param / name).write_bytes(content)
        try:
            staging.rename(folder)
        except OSError:  # another thread of this worker wrote it first
            shutil.rmtree(staging, ignore_errors=True)
    return folder
