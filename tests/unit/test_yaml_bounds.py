"""Bounded YAML loading: alias bombs, deep nesting and recursive aliases fail at once with
``file:line`` (exit 2 through the CLI), and ordinary anchors and merge keys still work.

The timeouts are hang guards, not speed assertions: before the bounds, the alias bomb
ran for minutes and grew past 590 MB."""

from __future__ import annotations

from pathlib import Path

import pytest

from fdbuild.errors import SpecError
from fdbuild.spec.yaml_io import MAX_DEPTH, MAX_NODES, parse_scalar, read_yaml, to_plain
from tests.support.project import ProjectDir


def billion_laughs(levels: int = 9) -> str:
    """The classic bomb: each anchor is a list of nine aliases of the previous one."""
    lines = ["fdbuild: 1", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append("nodes: {}")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        to_plain(read_yaml(path))
    return info.value.message


@pytest.mark.timeout(60)
def test_billion_laughs_fails_naming_file_and_line(tmp_path: Path) -> None:
    text = billion_laughs()
    assert len(text.encode()) < 600  # the bomb: ~580 bytes, 387M values expanded
    message = load_error(write(tmp_path, text))
    assert message.startswith(f"{tmp_path / 't.yaml'}:")
    line = int(message.split(":")[1])
    assert 3 <= line <= 10  # where the budget ran out, inside the anchors
    assert f"more than {MAX_NODES:,} values once aliases are expanded" in message


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "nodes, line",
    [
        ("[" * 5000 + "]" * 5000, 2),
        ("{a: " * 5000 + "1" + "}" * 5000, 2),
        ("\n" + "\n".join(" " * (i + 1) + f"k{i}:" for i in range(5000)) + " 1", 1 + MAX_DEPTH),
    ],
    ids=["flow-seq", "flow-map", "block-map"],
)
def test_5000_levels_of_nesting_fail(tmp_path: Path, nodes: str, line: int) -> None:
    message = load_error(write(tmp_path, f"fdbuild: 1\nnodes: {nodes}\n"))
    assert f"t.yaml:{line}: invalid YAML: nested deeper than {MAX_DEPTH} levels" in message


def test_depth_limit_is_exact(tmp_path: Path) -> None:
    """The document mapping is level 1: MAX_DEPTH - 1 more levels load, one more fails."""
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert to_plain(read_yaml(write(tmp_path, f"nodes: {ok}\n")))["nodes"]
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert "nested deeper" in load_error(write(tmp_path, f"nodes: {deep}\n", "deep.yaml"))


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "fdbuild: 1\na: &a [1, *a]\nnodes: {}\n"))
    assert "t.yaml:2:" in message and "alias *a refers to a collection that contains it" in message


def test_alias_budget_counts_expanded_values(tmp_path: Path) -> None:
    """Just under the budget loads; an alias that takes the total past it fails."""
    big = "[" + ",".join(["1"] * 999) + "]"  # 1,000 values with the list itself
    under = MAX_NODES // 1000 - 2
    text = f"a: &a {big}\nb: [" + ",".join(["*a"] * under) + "]\n"
    assert len(to_plain(read_yaml(write(tmp_path, text)))["b"]) == under
    over = "a: &a {big}\nb: [" + ",".join(["*a"] * (MAX_NODES // 1000 + 1)) + "]\n"
    message = load_error(write(tmp_path, over.replace("{big}", big), "over.yaml"))
    assert "over.yaml:2:" in message and "aliases are expanded" in message


def test_ordinary_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    text = "base: &b {x: 1, y: [1, 2]}\nc:\n  <<: *b\n  z: 3\nd: [*b, *b]\ns: &s hi\nt: *s\n"
    data = to_plain(read_yaml(write(tmp_path, text)))
    assert data["c"] == {"z": 3, "x": 1, "y": [1, 2]}
    assert data["d"] == [{"x": 1, "y": [1, 2]}] * 2 and data["t"] == "hi"


@pytest.mark.timeout(60)
def test_set_value_bomb_is_kept_as_text() -> None:
    """A ``--set`` value is YAML too: a bomb there stays the text typed, never a list
    whose validation would expand it."""
    items = ["&l0 [" + ",".join(["lol"] * 9) + "]"]
    items += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = "[" + ", ".join(items) + "]"
    assert parse_scalar(bomb) == bomb
    assert parse_scalar("[1, 2]") == [1, 2] and parse_scalar("true") is True


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["bomb", "deep"])
def test_cli_exits_2_and_writes_nothing(project: ProjectDir, kind: str) -> None:
    text = billion_laughs() if kind == "bomb" else "fdbuild: 1\nnodes: " + "[" * 5000 + "\n"
    project.gen({"targets/t.yaml": text})
    res = project.build("targets/t.yaml", expect=2)
    assert "Traceback" not in res.stderr
    assert "t.yaml:" in res.stderr and "invalid YAML" in res.stderr
    assert not (project.root / ".fdbuild").exists()
    assert not (project.root / "fdbuild.lock").exists()
