"""Plugins (issue 12, item 1): lookup order, keying by version and source digest, and
every load error naming file:line:key and the plugin."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fdbuild import plugins
from fdbuild.checks import get_check_class
from fdbuild.checks.rules import RulesCheck
from fdbuild.errors import SpecError
from fdbuild.exports import get_exporter
from fdbuild.parsers import get_parser_class
from fdbuild.plugins import PluginError, keyed_version
from fdbuild.spec.graph import load_graph

EXAMPLE_SRC = Path(__file__).resolve().parents[2] / "examples" / "plugin_example" / "src"

CHECK_FILE = """
from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    field: str = "text"


class Shout(Check[P]):
    version = "1"
    Params = P
    outputs = {"loud": "bool"}

    def reads(self):
        return [self.params.field]

    def evaluate(self, row):
        return {"loud": str(row.get(self.params.field) or "").isupper()}
"""


@pytest.fixture(autouse=True)
def fresh_entry_points() -> Iterator[None]:
    plugins._entry_points.cache_clear()
    yield
    plugins._entry_points.cache_clear()


def install_dist(
    site: Path, monkeypatch: pytest.MonkeyPatch, group: str, name: str, value: str
) -> None:
    """A minimal installed distribution (dist-info with entry_points.txt) on sys.path:
    what ``pip install`` leaves behind, as importlib.metadata reads it."""
    info = site / "fdbuild_test_plugin-2.5.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fdbuild-test-plugin\nVersion: 2.5\n"
    )
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {value}\n")
    monkeypatch.syspath_prepend(str(site))
    plugins._entry_points.cache_clear()


def write_target(folder: Path, check: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(["a", "B"]))
    )
    path = folder / "t.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            fdbuild: 1
            name: t
            nodes:
              rows:
                kind: source
                path: rows.jsonl
                id: id
              gated:
                kind: gate
                input: rows
                check: {json.dumps(check)}
            """
        )
        + extra
    )
    return path


def load(path: Path):
    return load_graph([path], root=path.parent)


def test_builtins_resolve_as_before_and_keep_their_keys() -> None:
    assert get_check_class("rules") is RulesCheck
    assert get_parser_class("sql").__name__ == "SqlParser"
    assert get_exporter("jsonl").__name__ == "JsonlExport"
    assert keyed_version(RulesCheck) == RulesCheck.version == "1"  # no digest appended


def test_file_check_is_loaded_relative_to_the_target_and_keyed_by_its_source(
    tmp_path: Path,
) -> None:
    (tmp_path / "proj" / "checks").mkdir(parents=True)
    plugin = tmp_path / "proj" / "checks" / "shout.py"
    plugin.write_text(CHECK_FILE)
    target = write_target(tmp_path / "proj", "./checks/shout.py:Shout")
    graph = load(target)
    check = next(n.check for n in graph.nodes.values() if n.kind == "gate")
    assert check is not None and check.evaluate({"text": "HI"}) == {"loud": True}
    assert check.name == "shout.py:Shout"  # the file's name, not where it is
    first = keyed_version(check)
    assert first.startswith("1+x3:")

    again = next(n.check for n in load(target).nodes.values() if n.kind == "gate")
    assert type(again) is type(check) and keyed_version(again) == first  # cached module

    plugin.write_text(CHECK_FILE.replace("isupper()", "isupper() and True"))
    edited = next(n.check for n in load(target).nodes.values() if n.kind == "gate")
    assert keyed_version(edited) != first and keyed_version(edited).startswith("1+x3:")


def test_file_relative_to_a_parent_folder(tmp_path: Path) -> None:
    (tmp_path / "shared.py").write_text(CHECK_FILE)
    target = write_target(tmp_path / "targets", "../shared.py:Shout")
    assert any(n.check is not None for n in load(target).nodes.values())


def test_entry_point_is_found_by_name_and_a_missing_version_takes_the_dist_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "site" / "fdbuild_test_ep.py"
    pkg.parent.mkdir()
    pkg.write_text(CHECK_FILE.replace('    version = "1"\n', ""))
    install_dist(tmp_path / "site", monkeypatch, "fdbuild.checks", "shout", "fdbuild_test_ep:Shout")
    cls = get_check_class("shout")
    assert cls.__name__ == "Shout" and cls.version == "2.5"
    assert keyed_version(cls) == "2.5"  # an installed package: its version, no digest
    assert "shout" in plugins.available(plugins.Kind("check", object, {}))


def test_example_package_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package's own entry point, from a dist-info next to its source (the
    test does not need CI to have installed it)."""
    site = tmp_path / "site"
    site.mkdir()
    install_dist(
        site, monkeypatch, "fdbuild.checks", "length_ratio", "fdbuild_length_ratio:LengthRatio"
    )
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    cls = get_check_class("length_ratio")
    check = cls(cls.Params.model_validate({"min_ratio": 0.5, "max_ratio": 2}), tmp_path)
    assert check.evaluate({"completion": "abcd", "prompt": "ab"}) == {
        "length_ratio": 2.0,
        "ratio_reason": "ok",
    }
    assert check.evaluate({"completion": "a", "prompt": "abcd"})["ratio_reason"] == "too_short"
    assert check.evaluate({"completion": "a", "prompt": ""})["ratio_reason"] == "no_reference"


def test_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fdbuild_test_mod.py").write_text(CHECK_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = get_check_class("fdbuild_test_mod:Shout")
    assert cls.name == "fdbuild_test_mod:Shout" and keyed_version(cls) == "1"


def test_a_subclass_of_a_builtin_must_declare_its_own_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inheriting RulesCheck's name and version would share the built-in's cache keys."""
    (tmp_path / "fdbuild_test_sub.py").write_text(
        "from fdbuild.checks.rules import RulesCheck\n\n\nclass Mine(RulesCheck):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="declares no 'version'"):
        get_check_class("fdbuild_test_sub:Mine")
    (tmp_path / "sub.py").write_text(
        "from fdbuild.checks.rules import RulesCheck\n\n\n"
        "class Mine(RulesCheck):\n    version = '1'\n"
    )
    cls = get_check_class("./sub.py:Mine", tmp_path)
    assert cls.name == "sub.py:Mine" and RulesCheck.name == "rules"
    assert keyed_version(cls).startswith("1+x3:") and keyed_version(RulesCheck) == "1"


def test_file_parser_and_exporter(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(
        textwrap.dedent(
            """
            from fdbuild.parsers.base import Parser, ParseFailure
            from fdbuild.exports.base import Exporter

            class Upper(Parser):
                version = "3"
                outputs = {"upper": "string"}
                def parse(self, text):
                    if not text:
                        raise ParseFailure("empty")
                    return {"upper": text.upper()}

            class Plain(Exporter):
                version = "1"
                def records(self, rows):
                    for row in rows:
                        yield {"text": row["text"]}
            """
        )
    )
    parser = get_parser_class("./p.py:Upper", tmp_path)()
    assert parser.parse("ab") == {"upper": "AB"} and keyed_version(parser).startswith("3+x3:")
    assert get_exporter("./p.py:Plain", tmp_path).__name__ == "Plain"


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("source", "ref", "needle"),
    [
        ("def broken(:\n", "./bad.py:Shout", "cannot import check './bad.py:Shout': SyntaxError"),
        (
            "import fdbuild_no_such_module\n",
            "./bad.py:Shout",
            "ModuleNotFoundError: No module named 'fdbuild_no_such_module'",
        ),
        (
            "raise RuntimeError('boom at import')\n",
            "./bad.py:Shout",
            "RuntimeError: boom at import",
        ),
        (CHECK_FILE, "./bad.py:Nope", "has no attribute 'Nope'"),
        ("def Shout(row):\n    return {}\n", "./bad.py:Shout", "is a function, not a subclass"),
        (
            "class Shout:\n    version = '1'\n",
            "./bad.py:Shout",
            "is class Shout, not a subclass of fdbuild.checks.base.Check",
        ),
        (CHECK_FILE.replace('    version = "1"\n', ""), "./bad.py:Shout", "declares no 'version'"),
        (
            CHECK_FILE.replace("    def evaluate", "    def _evaluate").replace(
                "    def reads", "    def _reads"
            ),
            "./bad.py:Shout",
            "does not implement reads",
        ),
        (CHECK_FILE, "./missing.py:Shout", "cannot read"),
        (CHECK_FILE, "no_such_check", "unknown check 'no_such_check' (checks: dedup, "),
        (CHECK_FILE, "fdbuild_no_such_module:X", "module 'fdbuild_no_such_module'"),
    ],
)
def test_load_errors_name_file_line_key_and_the_plugin(
    tmp_path: Path, source: str, ref: str, needle: str
) -> None:
    (tmp_path / "bad.py").write_text(source)
    target = write_target(tmp_path, ref)
    with pytest.raises(SpecError) as info:
        load(target)
    message = info.value.message
    assert message.startswith(f"{target}:11: nodes.gated.check: "), message
    assert needle in message and "\n" not in message and "Traceback" not in message
    assert ref in message


def test_entry_point_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "fdbuild_test_broken.py").write_text("raise ImportError('needs libfoo')\n")
    install_dist(site, monkeypatch, "fdbuild.checks", "broken", "fdbuild_test_broken:X")
    target = write_target(tmp_path / "proj", "broken")
    with pytest.raises(
        SpecError,
        match=r"t\.yaml:11: nodes\.gated\.check: cannot load check "
        r"entry point 'broken' \(fdbuild_test_broken:X, group fdbuild\.checks\): "
        r"ImportError: needs libfoo",
    ):
        load(target)


def test_unknown_parser_and_exporter_are_load_errors_at_their_keys(tmp_path: Path) -> None:
    target = write_target(
        tmp_path,
        "rules",
        extra=textwrap.indent(
            textwrap.dedent(
                """\
                out:
                  kind: export
                  input: gated
                  format: ./nowhere.py:Exp
                  path: out.jsonl
                """
            ),
            "  ",
        ),
    )
    (tmp_path / "rows.jsonl").write_text('{"id": "a", "completion": "x"}\n')
    with pytest.raises(
        SpecError,
        match=r"t\.yaml:15: nodes\.out\.format: exporter "
        r"'\./nowhere\.py:Exp': cannot read",
    ):
        load(target)
    with pytest.raises(PluginError, match="unknown parser 'nope'"):
        get_parser_class("nope")


def test_file_modules_do_not_leak_into_sys_modules_on_failure(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise ValueError('x')\n")
    before = set(sys.modules)
    with pytest.raises(PluginError):
        get_check_class("./bad.py:X", tmp_path)
    assert not [m for m in set(sys.modules) - before if m.startswith("fdbuild_plugin_")]
