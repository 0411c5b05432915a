"""``check: json_schema``: valid and invalid values, the first error's JSON path, schema
files (keyed by content), and invalid schemas refused at load time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fdbuild.checks import get_check_class
from fdbuild.checks.json_schema import JsonSchemaCheck, JsonSchemaParams, json_path
from fdbuild.errors import ParamError

SCHEMA = {
    "type": "object",
    "required": ["name", "items"],
    "properties": {
        "name": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "qty"],
                "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}


def check(base: Path = Path("."), **params: object) -> JsonSchemaCheck:
    return JsonSchemaCheck(JsonSchemaParams.model_validate(params), base)


def items(*entries: dict[str, object]) -> str:
    return json.dumps({"name": "order", "items": list(entries)})


@pytest.mark.parametrize(
    ("value", "valid", "path"),
    [
        (items({"name": "a", "qty": 1}), True, None),
        (items(), True, None),
        (
            items({"name": "a", "qty": 1}, {"name": "b", "qty": 2}, {"name": 3, "qty": 1}),
            False,
            "$.items[2].name",
        ),
        (items({"name": "a", "qty": "1"}), False, "$.items[0].qty"),
        (items({"name": "a"}), False, "$.items[0]"),  # a missing required key
        (json.dumps({"items": []}), False, "$"),
        ("[1, 2]", False, "$"),
        ("not json {", False, "$"),
        (None, False, "$"),
        ({"name": "x", "items": []}, True, None),  # an already-decoded value
    ],
)
def test_values(value: object, valid: bool, path: str | None) -> None:
    out = check(schema=SCHEMA).evaluate({"parsed": value})
    assert out["valid"] is valid and out["error_path"] == path
    assert (out["schema_error"] is None) is valid


def test_first_error_is_by_location_and_message_is_short() -> None:
    bad = items({"name": 1, "qty": "x"}, {"name": 2, "qty": 1})
    out = check(schema=SCHEMA).evaluate({"parsed": bad})
    assert out["error_path"] == "$.items[0].name"
    assert out["schema_error"] == "1 is not of type 'string'"
    long = check(schema={"type": "string"}).evaluate({"parsed": json.dumps(list(range(500)))})
    assert len(long["schema_error"]) == 200 and long["schema_error"].endswith("...")


def test_column_and_decode_params() -> None:
    c = check(schema={"type": "string"}, column="reply", decode=False)
    assert list(c.reads()) == ["reply"]
    assert c.evaluate({"reply": "plain text"})["valid"] is True
    decoded = check(schema={"type": "string"}, column="reply")
    assert decoded.evaluate({"reply": "plain text"})["error_path"] == "$"  # not JSON


def test_draft_2020_12_by_default_and_schema_dialect_wins() -> None:
    tuple_schema = {"prefixItems": [{"type": "integer"}], "items": False}
    assert check(schema=tuple_schema).evaluate({"parsed": "[1]"})["valid"] is True
    assert check(schema=tuple_schema).evaluate({"parsed": "[1, 2]"})["valid"] is False
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "integer"}]}
    assert check(schema=draft7).evaluate({"parsed": '["x"]'})["error_path"] == "$[0]"


def test_json_path_quotes_keys_that_are_not_identifiers() -> None:
    assert json_path([]) == "$"
    assert json_path(["items", 2, "name"]) == "$.items[2].name"
    assert json_path(["a b", "it's"]) == "$['a b']['it\\'s']"


def test_schema_file_is_a_keyed_file_dep(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas/order.json").write_text(json.dumps(SCHEMA))
    c = check(tmp_path, schema_file="schemas/order.json")
    assert c.file_deps() == {"schema_file": (tmp_path / "schemas/order.json").resolve()}
    assert c.evaluate({"parsed": items({"name": "a", "qty": 1})})["valid"] is True
    (tmp_path / "schemas/order.yaml").write_text("type: object\nrequired: [id]\n")
    y = check(tmp_path, schema_file="schemas/order.yaml")
    assert y.evaluate({"parsed": "{}"})["valid"] is False
    assert check(schema=SCHEMA).file_deps() == {}


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"schema": {"type": "nonsense"}}, "schema", "not a valid JSON Schema"),
        ({"schema": {"properties": {"a": {"minimum": "x"}}}}, "schema", "properties.a.minimum"),
        ({"schema_file": "missing.json"}, "schema_file", "file not found"),
        ({"schema_file": "bad.json"}, "schema_file", "cannot read bad.json"),
        ({"schema_file": "bad_schema.json"}, "schema_file", "not a valid JSON Schema"),
    ],
)
def test_bad_schemas_are_load_errors(
    tmp_path: Path, params: dict[str, object], param: str, message: str
) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad_schema.json").write_text('{"type": 12}')
    with pytest.raises(ParamError) as err:
        check(tmp_path, **params)
    assert err.value.param == param and message in str(err.value)


def test_exactly_one_schema() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="exactly one of schema and schema_file"):
        JsonSchemaParams.model_validate({})
    with pytest.raises(ValidationError, match="exactly one"):
        JsonSchemaParams.model_validate({"schema": {}, "schema_file": "x.json"})


def test_registered() -> None:
    assert get_check_class("json_schema") is JsonSchemaCheck
