"""A plausible code teacher for targets/code_sft.yaml, answering from examples/code_mini.

The reply is a pure function of (model, task, seed), as a real teacher's cached reply is:
most tasks get their reference solution in a ```python fence with a sentence around it;
now and then the solution is followed by a shorter usage block (``parse: python`` must
take the longest), is wrong (every test fails), has a syntax error, or holds no code at
all (a recorded parse failure). ``expected_outcome`` says which, so a test can count.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tests.support.ollama_server import Reply

CODE_EXAMPLE = Path(__file__).resolve().parents[2] / "examples/code_mini"
CODE_TASKS = [json.loads(line) for line in (CODE_EXAMPLE / "tasks.jsonl").read_text().splitlines()]
BY_ENTRY = {row["entry_point"]: row for row in CODE_TASKS}
CODE_PROMPT = re.compile(r"The function must be named `(\w+)`")


def is_code_prompt(prompt: str) -> bool:
    return CODE_PROMPT.search(prompt) is not None


def expected_outcome(model: str, task: dict[str, Any], seed: int) -> str:
    """solution | with_example | wrong | syntax | prose, for this (model, task, seed)."""
    digest = hashlib.sha256(json.dumps([model, task["task_id"], seed]).encode()).digest()
    h = int.from_bytes(digest[:8], "big") % 10
    return {0: "wrong", 1: "prose", 2: "syntax", 3: "with_example"}.get(h, "solution")


def code_reply(request: dict[str, Any]) -> Reply:
    prompt = request["messages"][-1]["content"]
    match = CODE_PROMPT.search(prompt)
    assert match is not None
    task = BY_ENTRY[match.group(1)]
    name, solution = task["entry_point"], task["solution"]
    outcome = expected_outcome(request["model"], task, request["options"].get("seed", 0))
    if outcome == "prose":
        return Reply(f"You can solve this by writing a function called {name} that loops.")
    if outcome == "syntax":
        return Reply(f"```python\ndef {name}(*args:\n    return None\n```")
    if outcome == "wrong":
        return Reply(f"```python\ndef {name}(*args, **kwargs):\n    return None\n```")
    reply = f"Here is the function:\n\n```python\n{solution}```\n"
    if outcome == "with_example":
        reply += f"\nUsage:\n\n```python\nprint({name})\n```\n"
    return Reply(reply)
