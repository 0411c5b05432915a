"""Read one target file: YAML -> overrides -> validated, frozen ``TargetFile``.

Every failure is a ``SpecError`` naming the file, the line and the key, with a
did-you-mean where a key is misspelt. Nothing is written while loading.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap

from fdbuild.errors import SpecError
from fdbuild.spec import model as m
from fdbuild.spec.yaml_io import line_of, parse_scalar, read_yaml, to_plain

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class Override:
    """One ``--set PATH=VALUE``."""

    path: tuple[str, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Override:
        if "=" not in text:
            raise SpecError(
                f"--set {text!r}: expected PATH=VALUE, e.g. teachers.main.model=qwen2.5:7b"
            )
        key, _, raw = text.partition("=")
        path = tuple(p for p in key.strip().split("."))
        if not key.strip() or any(not p for p in path):
            raise SpecError(f"--set {text!r}: empty path segment in {key!r}")
        return cls(path=path, value=parse_scalar(raw), text=text)


@dataclass(frozen=True)
class LoadedTarget:
    path: Path
    name: str
    spec: m.TargetFile
    raw: Any = field(repr=False, compare=False)
    overrides: tuple[Override, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def where(self, *loc: Any) -> str:
        """``file:line`` of a key path, for error messages."""
        line = line_of(self.raw, loc)
        return f"{self.path}:{line}" if line else str(self.path)

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def _known_fields() -> set[str]:
    names: set[str] = set()
    for obj in vars(m).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            names.update(obj.model_fields)
    return names


def _suggest(key: str) -> str:
    match = difflib.get_close_matches(key, sorted(_known_fields() - {key}), n=1, cutoff=0.75)
    return f"; did you mean '{match[0]}'?" if match else ""


def _apply_override(data: Any, ov: Override, path: Path) -> None:
    node = data
    for i, part in enumerate(ov.path[:-1]):
        if isinstance(node, dict):
            if part not in node or not isinstance(node[part], (dict, list)):
                where = ".".join(ov.path[: i + 1])
                raise SpecError(f"--set {ov.text}: {path} has no section '{where}'")
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SpecError(f"--set {ov.text}: cannot descend into '{part}' in {path}")
    last = ov.path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise SpecError(f"--set {ov.text}: no list item '{last}' in {path}")
        node[int(last)] = ov.value
    elif ov.value is None:
        node.pop(last, None)  # null removes the key: its default applies
    else:
        node[last] = ov.value


# A teacher's keys of which exactly one is given: setting one by --set drops the other
# (from the file), so `--set teachers.main.model_path=x.gguf` replaces `model:`.
EXCLUSIVE_KEYS = {
    "llamacpp": ("model", "model_path"),
    "ollama": ("host", "hosts"),  # --set teachers.x.host=URL replaces a file's pool
    "openai": ("base_url", "hosts"),
}


_TEACHER_MODELS: dict[str, type[BaseModel]] = {
    "ollama": m.OllamaTeacher,
    "llamacpp": m.LlamaCppTeacher,
    "openai": m.OpenAITeacher,
}


def _drop_replaced(data: Any, overrides: Sequence[Override]) -> None:
    """Keys of the file that an override replaced: the other of two exclusive keys, and,
    when ``provider`` is set, the keys the new provider does not have (``host``...)."""
    teachers = data.get("teachers") if isinstance(data, dict) else None
    if not isinstance(teachers, dict):
        return
    for name, teacher in teachers.items():
        if not isinstance(teacher, dict):
            continue
        set_here = {
            ov.path[2]
            for ov in overrides
            if len(ov.path) == 3 and ov.path[:2] == ("teachers", name) and ov.value is not None
        }
        provider = str(teacher.get("provider", "ollama"))
        model = _TEACHER_MODELS.get(provider)
        if "provider" in set_here and model is not None:
            for key in [k for k in teacher if k not in model.model_fields and k not in set_here]:
                del teacher[key]
        pair = EXCLUSIVE_KEYS.get(provider)
        if pair is None:
            continue
        for key in pair:
            if key in set_here:
                for other in pair:
                    if other != key and other not in set_here:
                        teacher.pop(other, None)


def _default_providers(data: dict[str, Any]) -> None:
    """``provider: ollama`` is the default; the discriminated union needs it explicit."""
    teachers = data.get("teachers")
    if isinstance(teachers, dict):
        for teacher in teachers.values():
            if isinstance(teacher, dict):
                teacher.setdefault("provider", "ollama")


def _format_error(
    target_path: Path, raw: Any, err: ErrorDetails, overrides: Sequence[Override]
) -> str:
    loc = [p for p in err["loc"]]
    line = line_of(raw, loc)
    where = f"{target_path}:{line}" if line else str(target_path)
    key_path = ".".join(str(p) for p in loc if not (isinstance(p, str) and p in _UNION_TAGS))
    hint = ""
    for ov in overrides:
        if _affects(ov, key_path):
            where += f" (after --set {ov.text})"
            if ov.path[-1] == "provider" and key_path != ".".join(ov.path):
                hint = f"; `--set {key_path}=null` drops the file's value (the default applies)"
    kind = err["type"]
    if kind == "value_error":  # a model validator's own sentence
        return f"{where}: {key_path}: {err['msg'].removeprefix('Value error, ')}"
    if hint and kind not in ("extra_forbidden", "missing"):
        return f"{where}: {key_path}: {err['msg']} (got {err.get('input')!r}){hint}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return f"{where}: unknown key '{key}' at {key_path}{_suggest(key)}"
    if kind == "missing":
        return f"{where}: missing required key '{loc[-1]}' at {key_path}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"{where}: {key_path}: {err['msg']}"
    return f"{where}: {key_path}: {err['msg']} (got {err.get('input')!r})"


def _affects(ov: Override, key_path: str) -> bool:
    """Whether an error at ``key_path`` may come from the override: the same key, a key
    inside it or around it, or any key of a section whose ``provider``/``kind`` it set."""
    ov_path = ".".join(ov.path)
    if key_path.startswith(ov_path) or ov_path.startswith(key_path):
        return True
    if ov.path[-1] in ("provider", "kind"):
        return key_path.startswith(".".join(ov.path[:-1]) + ".")
    return False


_UNION_TAGS = {
    "source",
    "generate",
    "gate",
    "select",
    "vote",
    "pairs",
    "compare",
    "export",
    "ollama",
    "llamacpp",
    "openai",
    "plugin",
}


def load_target(path: Path, overrides: Sequence[Override] = ()) -> LoadedTarget:
    """Load and validate one target file, applying ``--set`` overrides first."""
    path = path.resolve()
    raw = read_yaml(path)
    if not isinstance(raw, CommentedMap):
        raise SpecError(f"{path}: a target file is a YAML mapping with 'fdbuild: 1' and 'nodes:'")
    data = to_plain(raw)
    for ov in overrides:
        _apply_override(data, ov, path)
    _default_providers(data)
    _drop_replaced(data, overrides)
    try:
        spec = m.TargetFile.model_validate(data)
    except ValidationError as exc:
        messages = [_format_error(path, raw, e, overrides) for e in exc.errors()]
        raise SpecError("\n".join(messages)) from None
    name = spec.name or path.stem
    _check_name(path, raw, name)
    target = LoadedTarget(path=path, name=name, spec=spec, raw=raw, overrides=tuple(overrides))
    check_teachers(target)
    return target


def check_teachers(target: LoadedTarget) -> None:
    """What a teacher names must exist: a bundled model, a GGUF file (relative to the
    target's folder), a decode option the openai teacher's server understands."""
    _check_openai_options(target)
    for name, teacher in target.spec.teachers.items():
        if not isinstance(teacher, m.LlamaCppTeacher):
            continue
        from fdbuild.providers.llamacpp import BUNDLED_MODELS  # only for llamacpp teachers

        if teacher.model is not None and teacher.model not in BUNDLED_MODELS:
            known = ", ".join(sorted(BUNDLED_MODELS))
            raise SpecError(
                f"{_where(target, name, 'model')}: unknown llamacpp model "
                f"'{teacher.model}' at teachers.{name}.model (bundled: {known}); "
                f"for a GGUF file use teachers.{name}.model_path"
            )
        if teacher.model_path is not None:
            file = target.resolve_path(teacher.model_path)
            if not file.is_file():
                raise SpecError(
                    f"{_where(target, name, 'model_path')}: teachers.{name}.model_path "
                    f"'{teacher.model_path}' is not a file ({file}; relative paths are "
                    "the target file's folder's)"
                )


def _check_openai_options(target: LoadedTarget) -> None:
    """A decode option an openai teacher's ``server:`` has no field for would be keyed and
    silently ignored: refuse it here, naming the node's option."""
    from fdbuild.providers.openai_servers import OPTION_FIELDS, unsupported

    for node_name, node in target.spec.nodes.items():
        if not isinstance(node, m.GenerateNode):
            continue
        teacher = target.spec.teachers.get(node.teacher)
        if not isinstance(teacher, m.OpenAITeacher) or teacher.server is None:
            continue
        blocks: list[tuple[tuple[str, ...], m.Decode]] = [(("decode",), node.decode)]
        blocks += [(("profiles", p), d) for p, d in (node.profiles or {}).items()]
        for loc, decode in blocks:
            options = decode.model_dump(exclude_none=True, exclude={"logprobs", "top_logprobs"})
            bad = unsupported(teacher.server, options)
            if bad:
                key = ".".join(("nodes", node_name, *loc, bad[0]))
                where = target.where("nodes", node_name, *loc, bad[0])
                for ov in target.overrides:
                    if _affects(ov, key) or _affects(ov, f"teachers.{node.teacher}.server"):
                        where += f" (after --set {ov.text})"
                known = ", ".join(sorted(OPTION_FIELDS[teacher.server]))
                raise SpecError(
                    f"{where}: decode option '{bad[0]}' at {key}: server "
                    f"'{teacher.server}' (teachers.{node.teacher}.server) has no request "
                    f"field for it, so it would be keyed and ignored; options it takes: "
                    f"{known}; send a server's own field with teachers.{node.teacher}.extra_body"
                )


def _where(target: LoadedTarget, teacher: str, key: str) -> str:
    where = target.where("teachers", teacher, key)
    if where == str(target.path):
        where = target.where("teachers", teacher)
    for ov in target.overrides:
        if _affects(ov, f"teachers.{teacher}.{key}"):
            where += f" (after --set {ov.text})"
    return where


def _check_name(path: Path, raw: Any, name: str) -> None:
    import re

    if not re.match(m.NODE_NAME, name):
        raise SpecError(f"{path}: target name {name!r} must match {m.NODE_NAME} (set 'name:')")
    nodes = raw.get("nodes") if isinstance(raw, dict) else None
    for node_name in nodes or {}:
        if not re.match(m.NODE_NAME, str(node_name)):
            line = line_of(raw, ["nodes", node_name])
            raise SpecError(f"{path}:{line}: node name {node_name!r} must match {m.NODE_NAME}")
