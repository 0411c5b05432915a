"""Issue 12 acceptance (plugins): a check from a project-local file and one from an
installed package each build; editing the file's source re-evaluates its rows and
nothing upstream (counted in teacher requests and in the gates' computed/cached)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fdbuild import plugins
from tests.support.project import ProjectDir, questions_jsonl

TARGET = "targets/plug.yaml"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin_example"

LOCAL_CHECK = """
from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    field: str = "completion"


class Words(Check[P]):
    version = "1"
    Params = P
    outputs = {"words": "int64"}

    def reads(self):
        return [self.params.field]

    def evaluate(self, row):
        return {"words": len(str(row.get(self.params.field) or "").split())}
"""


def target(host: str) -> str:
    return textwrap.dedent(
        f"""\
        fdbuild: 1
        name: plug
        teachers:
          main: {{model: qwen2.5-coder:7b, host: {host}, concurrency: 4}}
        nodes:
          questions: {{kind: source, path: data/questions.jsonl, id: task_id}}
          answers:
            kind: generate
            input: questions
            teacher: main
            template: "Question: {{question}}\\nAnswer:"
            n: 2
          ratio:
            kind: gate
            input: answers
            check: length_ratio
            params: {{text: completion, reference: question, max_ratio: 100}}
            keep: {{ratio_reason: ok}}
          words:
            kind: gate
            input: ratio
            check: ./checks/words.py:Words
            keep: {{words: {{min: 1}}}}
          kept: {{kind: select, input: words}}
          out: {{kind: export, input: kept, format: jsonl, path: out/plug.jsonl}}
        """
    )


@pytest.fixture
def example_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package as pip leaves it: a dist-info with its entry point, its
    package importable. Works whether or not CI also installed it for real."""
    site = tmp_path / "site"
    info = site / "fdbuild_length_ratio-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fdbuild-length-ratio\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[fdbuild.checks]\nlength_ratio = fdbuild_length_ratio:LengthRatio\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    plugins._entry_points.cache_clear()
    yield
    plugins._entry_points.cache_clear()


def stats(result) -> dict:
    return result.json()


def test_local_file_and_installed_package_checks_build_and_edits_cost_only_their_rows(
    project: ProjectDir, ollama_server, example_installed
) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(12),
            "targets/checks/words.py": LOCAL_CHECK,
            TARGET: target(ollama_server.url),
        }
    )
    first = stats(project.build(TARGET, "--json"))
    assert first["teacher_calls"] == 24
    assert first["nodes"]["ratio"]["computed"] == 24
    assert first["nodes"]["words"]["computed"] == 24
    rows = [json.loads(line) for line in project.read("targets/out/plug.jsonl").splitlines()]
    assert rows and all(r["words"] >= 1 and r["ratio_reason"] == "ok" for r in rows)
    assert all(r["words"] == len(r["completion"].split()) for r in rows)

    again = stats(project.build(TARGET, "--json"))
    assert again["teacher_calls"] == 0
    assert again["nodes"]["words"]["computed"] == 0 and again["nodes"]["words"]["cached"] == 24

    # edit the local check's source: its gate re-evaluates every row it receives, nothing else
    before = ollama_server.generation_count
    project.gen({"targets/checks/words.py": LOCAL_CHECK.replace(".split())", ".split()) * 2")})
    edited = stats(project.build(TARGET, "--json"))
    assert ollama_server.generation_count == before and edited["teacher_calls"] == 0
    assert edited["nodes"]["answers"]["computed"] == 0
    assert edited["nodes"]["ratio"]["computed"] == 0
    assert edited["nodes"]["ratio"]["cached"] == 24
    words_in = edited["nodes"]["words"]["rows_in"]
    assert words_in == edited["nodes"]["ratio"]["rows_out"]
    assert edited["nodes"]["words"]["computed"] == words_in
    assert edited["nodes"]["words"]["cached"] == 0
    rows = [json.loads(line) for line in project.read("targets/out/plug.jsonl").splitlines()]
    assert all(r["words"] == 2 * len(r["completion"].split()) for r in rows)

    # back to the first source: its evaluations are still in the cache
    project.gen({"targets/checks/words.py": LOCAL_CHECK})
    back = stats(project.build(TARGET, "--json"))
    assert back["nodes"]["words"]["computed"] == 0  # the first version's rows are cached
    assert back["nodes"]["words"]["cached"] == words_in


def test_example_target_builds_with_the_example_package(
    project: ProjectDir, example_installed
) -> None:
    """examples/plugin_example/target.yaml, as CI builds it after installing the package."""
    for path in (EXAMPLE / "target.yaml", *EXAMPLE.glob("data/*"), *EXAMPLE.glob("checks/*.py")):
        rel = path.relative_to(EXAMPLE)
        project.gen({f"ex/{rel}": path.read_text(encoding="utf-8")})
    summary = stats(project.build("ex/target.yaml", "--json"))
    assert summary["nodes"]["ratio"]["computed"] == 12
    assert summary["nodes"]["words"]["computed"] == 12
    kept = [json.loads(line) for line in project.read("ex/out/qa_checked.jsonl").splitlines()]
    ids = {r["_id"] for r in kept}
    assert len(kept) == 10 and "q06" not in ids and "q11" not in ids  # rambling; too short


def test_a_broken_plugin_is_exit_2_naming_the_key(project: ProjectDir, ollama_server) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(2),
            "targets/checks/words.py": "import this_module_does_not_exist\n",
            TARGET: target(ollama_server.url)
            .replace("check: length_ratio", "check: rules")
            .replace("params: {text: completion, reference: question, max_ratio: 100}", "")
            .replace("keep: {ratio_reason: ok}", "keep: {rule_reason: ok}"),
        }
    )
    result = project.build(TARGET, expect=2)
    assert "plug.yaml:" in result.stderr and "nodes.words.check:" in result.stderr
    assert "./checks/words.py:Words" in result.stderr
    assert "ModuleNotFoundError: No module named 'this_module_does_not_exist'" in result.stderr
    assert "Traceback" not in result.stderr
    assert ollama_server.generation_count == 0


ECHO_PROVIDER = '''
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherResponse

CALLS = []


class Echo(Provider):
    """Replies with the user message, reversed: deterministic, in-process."""

    name = "echo"

    def __init__(self, model, timeout_s, suffix=""):
        self.model = model
        self.suffix = suffix

    async def resolve(self):
        return TeacherIdentity(provider="echo", model=self.model, digest="echo-v1" + self.suffix)

    async def generate(self, request):
        CALLS.append(1)
        return TeacherResponse(text=request.messages[-1]["content"][::-1] + self.suffix)
'''


def provider_target(provider: str, options: str = "{suffix: '!'}") -> str:
    return textwrap.dedent(
        f"""\
        fdbuild: 1
        name: echo
        teachers:
          main: {{provider: {json.dumps(provider)}, model: echo-1, options: {options}}}
        nodes:
          questions: {{kind: source, path: data/questions.jsonl, id: task_id}}
          answers: {{kind: generate, input: questions, teacher: main, template: "{{question}}"}}
          out: {{kind: export, input: answers, format: jsonl, path: out/echo.jsonl}}
        """
    )


def test_a_file_provider_is_a_teacher_keyed_by_what_its_resolve_says(
    project: ProjectDir,
) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            "targets/echo.py": ECHO_PROVIDER,
            "targets/t.yaml": provider_target("./echo.py:Echo"),
        }
    )
    first = stats(project.build("targets/t.yaml", "--json"))
    assert first["teacher_calls"] == 3
    rows = [json.loads(line) for line in project.read("targets/out/echo.jsonl").splitlines()]
    assert rows[0]["completion"] == "What is 0 plus 0?"[::-1] + "!"
    assert stats(project.build("targets/t.yaml", "--json"))["teacher_calls"] == 0
    # another identity (resolve() reports another digest): every generation asked again
    project.gen({"targets/t.yaml": provider_target("./echo.py:Echo", "{suffix: '?'}")})
    assert stats(project.build("targets/t.yaml", "--json"))["teacher_calls"] == 3


@pytest.mark.parametrize(
    ("provider", "options", "needle"),
    [
        ("./nowhere.py:Echo", "{}", "teachers.main.provider: provider './nowhere.py:Echo'"),
        ("olama", "{}", "unknown provider 'olama' (providers: llamacpp, ollama, openai"),
        ("./echo.py:Echo", "{colour: red}", "teachers.main.options: provider './echo.py:Echo'"),
    ],
)
def test_provider_plugin_load_errors(
    project: ProjectDir, provider: str, options: str, needle: str
) -> None:
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(1),
            "targets/echo.py": ECHO_PROVIDER,
            "targets/t.yaml": provider_target(provider, options),
        }
    )
    result = project.build("targets/t.yaml", expect=2)
    assert "t.yaml:4: " in result.stderr and needle in result.stderr, result.stderr


PARSE_AND_EXPORT = """
from fdbuild.exports.base import Exporter
from fdbuild.parsers.base import ParseFailure, Parser


class Shout(Parser):
    version = "1"
    outputs = {"shout": "string"}

    def parse(self, text):
        if not text.strip():
            raise ParseFailure("empty")
        return {"shout": text.upper()}


class Shouts(Exporter):
    version = "1"

    def records(self, rows):
        for row in rows:
            yield {"id": row["_id"], "shout": row["shout"]}
"""


def test_file_parser_and_exporter_build_and_an_edit_reparses_without_the_teacher(
    project: ProjectDir, ollama_server
) -> None:
    text = textwrap.dedent(
        f"""\
        fdbuild: 1
        name: pe
        teachers:
          main: {{model: qwen2.5-coder:7b, host: {ollama_server.url}}}
        nodes:
          questions: {{kind: source, path: data/questions.jsonl, id: task_id}}
          answers:
            kind: generate
            input: questions
            teacher: main
            template: "{{question}}"
            parse: ./pe.py:Shout
          out: {{kind: export, input: answers, format: ./pe.py:Shouts, path: out/pe.jsonl}}
        """
    )
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(4),
            "targets/pe.py": PARSE_AND_EXPORT,
            "targets/pe.yaml": text,
        }
    )
    assert stats(project.build("targets/pe.yaml", "--json"))["teacher_calls"] == 4
    rows = [json.loads(line) for line in project.read("targets/out/pe.jsonl").splitlines()]
    assert len(rows) == 4 and all(r["shout"] == r["shout"].upper() for r in rows)

    project.gen({"targets/pe.py": PARSE_AND_EXPORT.replace("text.upper()", "text.lower()")})
    before = ollama_server.generation_count
    edited = stats(project.build("targets/pe.yaml", "--json"))
    assert edited["teacher_calls"] == 0 and ollama_server.generation_count == before
    rows = [json.loads(line) for line in project.read("targets/out/pe.jsonl").splitlines()]
    assert all(r["shout"] == r["shout"].lower() for r in rows)
