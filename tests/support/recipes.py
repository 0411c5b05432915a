"""A plausible Text2SQL teacher for the paper recipes, and a project holding the recipes.

The responder answers from the prompt as a real teacher would, only deterministically:
SQL is the gold query for most (question, seed) pairs and a wrong but runnable query for
the others; a step-by-step prompt (``### RATIONALE`` in the system prompt) gets a
rationale and a fenced answer, now and then without delimiters (a parse failure); a judge
prompt (``Candidate SQL:``) gets ``Score: N/10``, high for the gold query and low
otherwise. A model whose name starts with ``student`` is wrong more often, so the
born-again iterations differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.support.code_replies import CODE_EXAMPLE, code_reply, is_code_prompt
from tests.support.math_recipe import MATH_EXAMPLE, math_reply
from tests.support.ollama_server import Reply
from tests.support.project import ProjectDir

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/wikisql_mini"
EXAMPLE_ROWS = [json.loads(line) for line in (EXAMPLE / "train.jsonl").read_text().splitlines()]
BY_QUESTION = {row["question"]: row for row in EXAMPLE_ROWS}
_QUESTION = re.compile(r"^Question: (.*)$", re.M)


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:8], "big")


def _norm(sql: str) -> str:
    return " ".join(sql.strip().rstrip(";").split()).lower()


def wrong_sql(row: dict[str, Any], variant: int) -> str:
    """SQL on the row's table that does not return the gold result: three variants run,
    the fourth names a column the table does not have (an execution error)."""
    table = row["table"]
    return [
        f"SELECT col0 FROM {table} WHERE col0 = 'nobody'",
        f"SELECT COUNT(*) FROM {table}",
        f"SELECT col1 FROM {table}",
        f"SELECT col9 FROM {table}",
    ][variant % 4]


def judge_reply(prompt: str) -> str:
    candidate = prompt.split("Candidate SQL:", 1)[1].split("\n", 1)[0].strip()
    row = BY_QUESTION[_QUESTION.search(prompt).group(1).strip()]
    h = _h("judge", candidate)
    score = 8 + h % 2 if _norm(candidate) == _norm(row["gold_sql"]) else 2 + h % 3
    return f"Score: {score}/10"


def recipe_responder(request: dict[str, Any]) -> Reply:
    messages = request["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    prompt = messages[-1]["content"]
    if is_code_prompt(prompt):  # targets/code_sft.yaml
        return code_reply(request)
    math = math_reply(request)  # targets/math_sft.yaml (tests/support/math_recipe.py)
    if math is not None:
        return math
    if "Candidate SQL:" in prompt:
        return Reply(judge_reply(prompt))
    row = BY_QUESTION[_QUESTION.search(prompt).group(1).strip()]
    model = request["model"]
    h = _h(model, row["question"], request["options"].get("seed", 0))
    every = 3 if model.startswith("student") else 5
    sql = wrong_sql(row, h // every) if h % every == 0 else row["gold_sql"]
    if "### RATIONALE" in system:
        if h % 13 == 1:
            return Reply(f"The query is:\n{sql}")  # no delimiters: a recorded parse failure
        rationale = (
            f"The question asks about table {row['table']}; the WHERE clause keeps "
            "the rows it names and the SELECT returns the asked column."
        )
        return Reply(f"### RATIONALE\n{rationale}\n### ANSWER\n```sql\n{sql}\n```")
    return Reply(f"```sql\n{sql}\n```")


def recipe_project(project: ProjectDir, names: list[str] | None = None) -> list[str]:
    """Copy targets/ (all, or ``names``) and the example data into the temp project, so
    a test never writes into the repository. Returns the target paths, relative."""
    dest = project.root / "examples/wikisql_mini"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl", "train.db"):
        shutil.copy(EXAMPLE / name, dest / name)
    shutil.copytree(CODE_EXAMPLE, project.root / "examples/code_mini", dirs_exist_ok=True)
    math_dest = project.root / "examples/math_mini"
    math_dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(MATH_EXAMPLE / "train.jsonl", math_dest / "train.jsonl")
    (project.root / "targets").mkdir(exist_ok=True)
    files = sorted((REPO / "targets").glob("*.yaml"))
    if names is not None:
        files = [REPO / "targets" / f"{n}.yaml" for n in names]
    out = []
    for path in files:
        shutil.copy(path, project.root / "targets" / path.name)
        out.append(f"targets/{path.name}")
    return out
