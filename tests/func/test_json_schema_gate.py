"""``check: json_schema`` in a build: a schema file is keyed by content (editing it
re-evaluates the gate, moving nothing upstream), and an invalid schema or a missing file
is a load error naming file:line and the param."""

from __future__ import annotations

import json
import textwrap

from tests.support.project import ProjectDir

TARGET = "targets/x.yaml"


def target(params: str) -> str:
    return textwrap.dedent(
        """\
        fdbuild: 1
        name: x
        nodes:
          src:
            kind: source
            path: ../data/s.jsonl
            id: id
          checked:
            kind: gate
            input: src
            check: json_schema
            params: {params}
            keep: {{valid: true}}
          kept:
            kind: select
            input: checked
          out:
            kind: export
            input: kept
            format: jsonl
            columns: [_id, reply, error_path]
            path: ../out/x.jsonl
        """
    ).format(params=params)


ROWS = [
    {"id": "a", "reply": json.dumps({"city": "Oslo", "pop": 700000})},
    {"id": "b", "reply": json.dumps({"city": "Rome"})},
    {"id": "c", "reply": json.dumps({"city": 7, "pop": 1})},
    {"id": "d", "reply": "not json"},
]
SCHEMA = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string"}, "pop": {"type": "integer"}},
}


def setup(project: ProjectDir, params: str, schema: object = SCHEMA) -> None:
    project.gen(
        {
            "data/s.jsonl": "".join(json.dumps(r) + "\n" for r in ROWS),
            "targets/schemas/city.json": json.dumps(schema),
            TARGET: target(params),
        }
    )


def kept(project: ProjectDir) -> list[str]:
    lines = project.read("out/x.jsonl").splitlines()
    return [json.loads(line)["_id"] for line in lines]


def test_schema_file_edit_re_evaluates_the_gate(project: ProjectDir) -> None:
    setup(project, "{column: reply, schema_file: schemas/city.json}")
    first = project.build(TARGET, "--json").json()
    assert first["nodes"]["checked"]["computed"] == 4
    assert kept(project) == ["a", "b"]
    again = project.build(TARGET, "--json").json()
    assert again["nodes"]["checked"]["computed"] == 0 and again["nodes"]["checked"]["cached"] == 4

    strict = dict(SCHEMA, required=["city", "pop"])
    project.gen({"targets/schemas/city.json": json.dumps(strict)})
    edited = project.build(TARGET, "--json").json()
    assert edited["nodes"]["checked"]["computed"] == 4  # the file's digest is keyed
    assert kept(project) == ["a"]


def test_inline_schema_and_error_paths(project: ProjectDir) -> None:
    setup(project, "{column: reply, schema: {type: object, required: [pop]}}")
    project.build(TARGET)
    assert kept(project) == ["a", "c"]


def test_invalid_schema_is_a_load_error_at_its_line(project: ProjectDir) -> None:
    setup(project, "{column: reply, schema: {type: 12}}")
    res = project.build(TARGET, expect=2)
    assert "x.yaml:12: nodes.checked.params.schema: not a valid JSON Schema" in res.stderr
    assert not (project.root / "out").exists()


def test_missing_schema_file_is_a_load_error(project: ProjectDir) -> None:
    setup(project, "{column: reply, schema_file: schemas/none.json}")
    res = project.build(TARGET, expect=2)
    assert "x.yaml:12: nodes.checked.params.schema_file: file not found: schemas/none.json" in (
        res.stderr
    )


GENERATE = """\
fdbuild: 1
name: g
teachers:
  main: {model: MODEL}
nodes:
  src:
    kind: source
    path: ../data/s.jsonl
    id: id
  asked:
    kind: generate
    input: src
    teacher: main
    template: "Describe {reply} as JSON."
    format: &city
      type: object
      required: [city, pop]
      properties: {city: {type: string}, pop: {type: integer}}
    parse: json
  checked:
    kind: gate
    input: asked
    check: json_schema
    params: {schema: *city}       # the generate node's format:, by a YAML alias
    keep: {valid: true}
  out:
    kind: export
    input: checked
    format: jsonl
    columns: [_id, parsed, valid, error_path]
    path: ../out/g.jsonl
"""


def test_the_generate_format_schema_validates_the_parsed_reply(
    project: ProjectDir, make_ollama_server, monkeypatch
) -> None:
    from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL, Reply

    def responder(request: dict) -> Reply:
        assert request["format"]["required"] == ["city", "pop"]  # sent as structured output
        prompt = request["messages"][-1]["content"]
        pop = '"many"' if "Rome" in prompt else "5"
        return Reply('```json\n{"city": "X", "pop": ' + pop + "}\n```")

    server = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST}, responder=responder)
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    project.gen(
        {
            "data/s.jsonl": "".join(json.dumps(r) + "\n" for r in ROWS[:2]),
            "targets/g.yaml": GENERATE.replace("MODEL", DEFAULT_MODEL),
        }
    )
    project.build("targets/g.yaml")
    rows = {r["_id"]: r for r in map(json.loads, project.read("out/g.jsonl").splitlines())}
    assert rows["a/0"]["valid"] is True and rows["a/0"]["error_path"] is None
    assert rows["b/0"]["valid"] is False and rows["b/0"]["error_path"] == "$.pop"
