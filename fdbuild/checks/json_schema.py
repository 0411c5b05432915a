"""The ``json_schema`` gate: does a structured reply follow a JSON Schema?

The reply is a generate node's ``parsed`` column (``parse: json`` stores canonical JSON
text) or any other column: a string value is decoded as JSON first (``decode: false``
validates the value as it is). The schema is given inline (``schema:``) or as a file
(``schema_file:``, relative to the target file; ``.json``, or ``.yaml``/``.yml``), whose
content digest is keyed like ``sqlite_exec``'s database: editing the file re-evaluates
its rows, moving it does not. The dialect is the schema's ``$schema``, else Draft 2020-12.
A schema that is not a valid schema is a load-time error at the param's line, not a
verdict on every row.

Outputs: ``valid`` (bool), ``error_path`` (the first error's location as a JSON path,
``$.items[2].name``; errors are ordered by location, so "first" is the same on every
machine) and ``schema_error`` (that error's message, at most 200 characters).
A missing value or text that is not JSON is ``valid = false`` at ``$``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from fdbuild.checks.base import Check, CheckParams
from fdbuild.errors import ParamError

_MAX_MESSAGE = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JsonSchemaParams(CheckParams):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    column: str = Field("parsed", description="Column holding the JSON value or text.")
    # `schema` would shadow a BaseModel attribute: the field is schema_, spelled schema.
    schema_: dict[str, Any] | bool | None = Field(
        None, alias="schema", description="The JSON Schema, inline."
    )
    schema_file: str | None = Field(
        None, description="A JSON or YAML schema file, relative to the target file."
    )
    decode: bool = Field(True, description="Decode a string value as JSON text first.")

    @model_validator(mode="after")
    def _one_schema(self) -> JsonSchemaParams:
        if (self.schema_ is None) == (self.schema_file is None):
            raise ValueError("give exactly one of schema and schema_file")
        return self


class JsonSchemaCheck(Check[JsonSchemaParams]):
    """Annotates valid, error_path, schema_error."""

    name = "json_schema"
    version = "1"
    Params = JsonSchemaParams
    outputs = {"valid": "bool", "error_path": "string", "schema_error": "string"}

    def __init__(self, params: JsonSchemaParams, base_dir: Path) -> None:
        super().__init__(params, base_dir)
        import jsonschema

        self._schema_path: Path | None = None
        param = "schema"
        schema: Any = params.schema_
        if params.schema_file is not None:
            param = "schema_file"
            self._schema_path = self.resolve_path(params.schema_file)
            schema = _read_schema(self._schema_path, params.schema_file)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = json_path(exc.absolute_path)
            raise ParamError(
                param, f"not a valid JSON Schema: {exc.message} (at {where})"
            ) from None
        self._validator = cls(schema)

    def reads(self) -> Sequence[str]:
        return [self.params.column]

    def file_deps(self) -> Mapping[str, Path]:
        return {} if self._schema_path is None else {"schema_file": self._schema_path}

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        value = row.get(self.params.column)
        if value is None:
            return _invalid("$", "no value")
        if self.params.decode and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                return _invalid("$", f"not JSON: {exc}")
        errors = list(self._validator.iter_errors(value))
        if not errors:
            return {"valid": True, "error_path": None, "schema_error": None}
        first = min(errors, key=lambda e: (_path_key(e.absolute_path), e.message))
        return _invalid(json_path(first.absolute_path), first.message)


def _invalid(path: str, message: str) -> dict[str, Any]:
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return {"valid": False, "error_path": path, "schema_error": message}


def json_path(parts: Iterable[Any]) -> str:
    """A location as a JSON path: ``$``, ``$.items[2].name``, ``$['a b']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(str(part)):
            out += f".{part}"
        else:
            key = str(part).replace("\\", "\\\\").replace("'", "\\'")
            out += f"['{key}']"
    return out


def _path_key(parts: Iterable[Any]) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts]


def _read_schema(path: Path, written: str) -> Any:
    if not path.is_file():
        problem = "file not found" if not path.exists() else "not a file"
        raise ParamError("schema_file", f"{problem}: {written} ({path})")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            from ruamel.yaml import YAML

            return YAML(typ="safe").load(text)
        return json.loads(text)
    except Exception as exc:  # a decoding or syntax error of any of the two readers
        raise ParamError("schema_file", f"cannot read {written}: {exc}") from None
