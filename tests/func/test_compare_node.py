"""The ``compare`` node end to end against the test server: a teacher's and a student's
gated, judged answers joined by row id, the figures checked against a table worked out by
hand (tests/unit/test_agreement.py holds the arithmetic), and the node cached like any
other (a keep edit upstream costs no teacher call)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.ollama_server import Reply
from tests.support.project import ProjectDir, questions_jsonl

TEACHER_DIGEST = "a" * 64
STUDENT_DIGEST = "b" * 64
JUDGE_DIGEST = "c" * 64

# question i -> (teacher passes, teacher score /10), (student passes, student score /10)
TABLE = {
    0: ((True, 9), (True, 8)),
    1: ((True, 8), (True, 8)),
    2: ((True, 7), (False, 3)),
    3: ((True, 6), (False, 2)),
    4: ((False, 2), (False, 1)),
    5: ((True, 9), (True, 7)),
}


def responder(request: dict) -> Reply:
    """Answers: 'answer N sS' passes the gate (must_match ^answer), 'wrong sS' fails it;
    the judge reads S back as 'Score: S/10'."""
    prompt = request["messages"][-1]["content"]
    if prompt.startswith("Grade:"):
        score = re.search(r"s(\d+)", prompt).group(1)
        return Reply(text=f"Score: {score}/10")
    i = int(re.search(r"What is (\d+) plus", prompt).group(1))
    side = 0 if request["model"].startswith("teacher") else 1
    ok, score = TABLE[i][side]
    return Reply(text=f"{'answer' if ok else 'wrong'} {2 * i} s{score}")


def side(name: str, model: str, keep: str = "{rule_reason: ok}") -> str:
    return f"""fdbuild: 1
name: {name}
teachers:
  main: {{model: "{model}", host: HOST}}
  judge: {{model: "judge:1b", host: HOST}}
nodes:
  questions: {{kind: source, path: data/questions.jsonl, id: task_id}}
  answers:
    kind: generate
    input: questions
    teacher: main
    template: "Question: {{question}}"
    decode: {{temperature: 0, seed: 1}}
  checked:
    kind: gate
    input: answers
    check: rules
    params: {{must_match: ["^answer"]}}
    keep: {keep}
  judged:
    kind: gate
    input: checked
    check: judge
    params: {{teacher: judge, template: "Grade: {{completion}}"}}
"""


COMPARE = """  cmp:
    kind: compare
    a: judged
    b: student.yaml#judged
"""


@pytest.fixture
def pair(project: ProjectDir, make_ollama_server):
    server = make_ollama_server(
        models={
            "teacher:7b": TEACHER_DIGEST,
            "student:1b": STUDENT_DIGEST,
            "judge:1b": JUDGE_DIGEST,
        }
    )
    server.responder = responder
    project.gen(
        {
            "data/questions.jsonl": questions_jsonl(6),
            "student.yaml": side("student", "student:1b").replace("HOST", server.url),
            "teacher.yaml": side("teacher", "teacher:7b").replace("HOST", server.url) + COMPARE,
        }
    )
    return project, server


def last_record(project: ProjectDir) -> dict:
    """The latest run's record (the lock names it: run ids of one second do not sort)."""
    from fdbuild.lockfile import load_lock

    run_id = load_lock(project.root / "fdbuild.lock")["targets"]["teacher"]["run"]
    return json.loads(next((project.root / ".fdbuild/runs").rglob(f"{run_id}.json")).read_text())


def test_compare_figures_match_the_hand_table(pair) -> None:
    project, server = pair
    out = project.build("teacher.yaml")
    record = last_record(project)
    cmp = record["nodes"]["cmp"]["stats"]["compare"]
    assert record["reports"]["compare"]["cmp"] == cmp
    assert (cmp["joined"], cmp["only_a"], cmp["only_b"]) == (6, 0, 0)
    checked = cmp["gates"]["checked"]
    # a passes 5 of 6, b 3 of 6; both 3, a only 2, neither 1: po 4/6, pe 5/6*1/2 + 1/6*1/2
    assert checked["n"] == 6
    assert (checked["both_pass"], checked["a_only"], checked["b_only"], checked["both_fail"]) == (
        3,
        2,
        0,
        1,
    )
    assert checked["pass_rate_a"] == pytest.approx(5 / 6, abs=1e-6)
    assert checked["pass_rate_b"] == pytest.approx(0.5)
    assert checked["agreement"] == pytest.approx(4 / 6, abs=1e-6)
    assert checked["kappa"] == pytest.approx(1 / 3, abs=1e-6)
    score = cmp["scores"]["score"]
    assert score["n"] == 6
    assert score["mae"] == pytest.approx(0.2, abs=1e-6)  # |diffs| .1 0 .4 .4 .1 .2
    assert score["rmse"] == pytest.approx((0.38 / 6) ** 0.5, abs=1e-6)
    # n*sum(ab) - sum(a)*sum(b) = 6*234 - 41*29 = 215; 6*315 - 41^2 = 209; 6*191 - 29^2 = 305
    assert score["pearson"] == pytest.approx(215 / (209 * 305) ** 0.5, abs=1e-6)
    assert score["spearman"] == pytest.approx(14.75 / 17, abs=1e-6)  # average ranks, ties
    assert "compare cmp: 6 joined (only a 0, only b 0)" in out.stdout
    assert "gate checked: pass a 0.83 b 0.50, agreement 0.67, kappa 0.33 (n 6)" in out.stdout
    rows = _rows(project, record["nodes"]["cmp"])
    assert [r["_id"] for r in rows] == [f"t{i:03d}/0" for i in range(6)]
    assert rows[2]["a_pass_checked"] is True and rows[2]["b_pass_checked"] is False
    assert rows[2]["b_completion"] == "wrong 4 s3"


def _rows(project: ProjectDir, node: dict) -> list[dict]:
    import pyarrow.parquet as pq

    from fdbuild.store.objects import ArtifactStore

    store = ArtifactStore(project.root / ".fdbuild/objects")
    return pq.read_table(store.path(node["output"]["digest"])).to_pylist()


def test_compare_is_cached_and_a_keep_edit_costs_no_teacher_call(pair) -> None:
    project, server = pair
    project.build("teacher.yaml")
    calls = server.generation_count
    again = project.build("teacher.yaml", "--json").json()
    assert again["teacher_calls"] == 0
    assert last_record(project)["nodes"]["cmp"]["stats"]["memo_hit"] is True
    assert last_record(project)["reports"]["compare"]["cmp"]["joined"] == 6
    # a keep edit on the student's gate (its misses now pass): verdicts change, from the cache
    student = project.read("student.yaml").replace(
        "{rule_reason: ok}", '{rule_reason: {in: [ok, "no_match:0"]}}'
    )
    project.gen({"student.yaml": student})
    edited = project.build("teacher.yaml", "--json").json()
    assert edited["teacher_calls"] == 0
    assert server.generation_count == calls
    cmp = last_record(project)["nodes"]["cmp"]["stats"]
    assert cmp["memo_hit"] is False
    assert cmp["compare"]["gates"]["checked"]["pass_rate_b"] == 1.0
    assert cmp["compare"]["gates"]["checked"]["kappa"] == 0.0  # b always passes: chance


def test_join_on_parent_counts_one_sided_rows(pair) -> None:
    project, server = pair
    # the student answers only questions 0-3: rows 4 and 5 are on one side only
    project.gen(
        {
            "data/student_q.jsonl": questions_jsonl(4),
            "student.yaml": project.read("student.yaml").replace(
                "data/questions.jsonl", "data/student_q.jsonl"
            ),
            "teacher.yaml": project.read("teacher.yaml") + "    on: parent\n",
        }
    )
    project.build("teacher.yaml")
    cmp = last_record(project)["nodes"]["cmp"]["stats"]["compare"]
    assert (cmp["on"], cmp["joined"], cmp["only_a"], cmp["only_b"]) == ("_parent", 4, 2, 0)
    assert cmp["gates"]["checked"]["n"] == 4
    assert cmp["gates"]["checked"]["n_a_all"] == 6


def test_compare_with_nothing_in_common_fails_at_load(pair) -> None:
    project, _ = pair
    text = project.read("teacher.yaml") + "    gates: [nope]\n"
    project.gen({"teacher.yaml": text})
    out = project.build("teacher.yaml", expect=2)
    assert "'nope' is not a gate upstream of side a 'judged'" in out.stderr
