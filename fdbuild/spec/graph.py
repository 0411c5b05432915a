"""From target files to one validated node graph.

Loads the requested targets and every target file they reach through
``input: other.yaml#node``; finds cycles (naming them); propagates column sets through
the graph so that a template placeholder, gate param or export column that names a
missing column fails here, before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdbuild import columns as C
from fdbuild.checks import get_check_class
from fdbuild.checks.base import Check
from fdbuild.errors import ParamError, SpecError
from fdbuild.parsers import get_parser_class
from fdbuild.parsers.base import Parser
from fdbuild.plugins import PluginError
from fdbuild.sources import peek_columns, source_format
from fdbuild.spec import model as m
from fdbuild.spec.export_paths import check_export_paths
from fdbuild.spec.load import LoadedTarget, Override, load_target
from fdbuild.spec.template import Template, TemplateSyntaxError, parse_template


@dataclass(frozen=True, order=True)
class NodeRef:
    target: str
    node: str

    def __str__(self) -> str:
        return f"{self.target}#{self.node}"


@dataclass
class GraphNode:
    ref: NodeRef
    spec: Any
    target: LoadedTarget
    inputs: tuple[NodeRef, ...]
    columns: tuple[str, ...] = ()
    template: Template | None = None
    check: Check[Any] | None = None
    parser: Parser | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    def where(self, *loc: Any) -> str:
        return self.target.where("nodes", self.ref.node, *loc)


@dataclass
class Graph:
    targets: dict[str, LoadedTarget]
    roots: list[str]
    nodes: dict[NodeRef, GraphNode]
    order: list[NodeRef]
    root: Path | None = None
    """The project folder the export paths were checked against."""

    def target_nodes(self, target: str) -> list[GraphNode]:
        return [self.nodes[r] for r in self.order if r.target == target]


def load_graph(
    paths: Sequence[Path], overrides: Sequence[Override] = (), root: Path | None = None
) -> Graph:
    """Load targets (overrides apply to the targets named here, not to their upstreams).

    ``root`` is the project folder exports must stay in (default: the one found from the
    current folder, as ``fdbuild build`` finds it without ``--root``)."""
    by_path: dict[Path, LoadedTarget] = {}
    roots: list[str] = []
    for path in paths:
        target = load_target(Path(path), overrides)
        _register(by_path, target)
        roots.append(target.name)
    nodes: dict[NodeRef, GraphNode] = {}
    pending = [t for t in by_path.values()]
    while pending:
        target = pending.pop()
        for name, spec in target.spec.nodes.items():
            ref = NodeRef(target.name, name)
            inputs = []
            for raw in m.node_inputs(spec):
                dep, new = _resolve_input(target, name, raw, by_path)
                inputs.append(dep)
                pending.extend(new)
            nodes[ref] = GraphNode(ref=ref, spec=spec, target=target, inputs=tuple(inputs))
    targets = {t.name: t for t in by_path.values()}
    for loaded in targets.values():
        _check_plugin_teachers(loaded)
    for node in nodes.values():
        for dep in node.inputs:
            if dep not in nodes:
                raise SpecError(
                    f"{node.where('input')}: node '{node.ref.node}' reads '{dep.node}', "
                    f"which is not a node of {targets[dep.target].path.name} "
                    f"(nodes: {', '.join(targets[dep.target].spec.nodes)})"
                )
    for graph_node in nodes.values():
        for dep in graph_node.inputs:
            if nodes[dep].kind == "export":
                raise SpecError(
                    f"{graph_node.where('input')}: node '{graph_node.ref.node}' reads export "
                    f"'{dep}', but an export ends a pipeline (it writes a file, not rows); "
                    f"read the export's input '{nodes[dep].spec.input}' instead"
                )
    wanted = _wanted(nodes, roots)
    nodes = {r: n for r, n in nodes.items() if r in wanted}
    order = _toposort(nodes)
    graph = Graph(targets=targets, roots=roots, nodes=nodes, order=order)
    for ref in order:
        _propagate(graph, graph.nodes[ref])
    if root is None:
        from fdbuild.project import find_project

        root = find_project().root
    graph.root = root.resolve()
    check_export_paths(graph, graph.root)
    from fdbuild.require import check_requires

    check_requires(graph)
    return graph


def _check_plugin_teachers(target: LoadedTarget) -> None:
    """A plugin provider is found and its constructor takes the teacher's options, at
    load (exit 2 at the key), not when the build first asks the teacher."""
    import inspect

    from fdbuild.providers import get_provider_class

    for name, spec in target.spec.teachers.items():
        if not isinstance(spec, m.PluginTeacher):
            continue
        try:
            cls = get_provider_class(spec.provider, target.base_dir)
        except PluginError as exc:
            where = target.where("teachers", name, "provider")
            raise SpecError(f"{where}: teachers.{name}.provider: {exc.message}") from None
        try:
            inspect.signature(cls).bind(model=spec.model, timeout_s=spec.timeout_s, **spec.options)
        except TypeError as exc:
            where = target.where("teachers", name, "options")
            raise SpecError(
                f"{where}: teachers.{name}.options: provider '{spec.provider}' "
                f"({cls.__name__}) does not take these options: {exc}"
            ) from None


def _register(by_path: dict[Path, LoadedTarget], target: LoadedTarget) -> None:
    for other in by_path.values():
        if other.name == target.name and other.path != target.path:
            raise SpecError(
                f"{target.path}: target name '{target.name}' is also used by "
                f"{other.path}; give one of them another 'name:'"
            )
    by_path[target.path] = target


def _resolve_input(
    target: LoadedTarget, node: str, raw: str, by_path: dict[Path, LoadedTarget]
) -> tuple[NodeRef, list[LoadedTarget]]:
    if "#" not in raw:
        if raw not in target.spec.nodes:
            raise SpecError(
                f"{target.where('nodes', node, 'input')}: node '{node}' reads '{raw}', "
                f"which is not a node here (nodes: {', '.join(target.spec.nodes)}); "
                "for another file's node write other.yaml#node"
            )
        return NodeRef(target.name, raw), []
    file_part, _, node_part = raw.partition("#")
    path = target.resolve_path(file_part)
    if path in by_path:
        return NodeRef(by_path[path].name, node_part), []
    if not path.exists():
        raise SpecError(
            f"{target.where('nodes', node, 'input')}: input '{raw}': no such file {path}"
        )
    other = load_target(path)
    _register(by_path, other)
    return NodeRef(other.name, node_part), [other]


def _wanted(nodes: dict[NodeRef, GraphNode], roots: list[str]) -> set[NodeRef]:
    wanted: set[NodeRef] = set()
    stack = [r for r in nodes if r.target in roots]
    while stack:
        ref = stack.pop()
        if ref in wanted:
            continue
        wanted.add(ref)
        stack.extend(nodes[ref].inputs)
    return wanted


def _toposort(nodes: dict[NodeRef, GraphNode]) -> list[NodeRef]:
    order: list[NodeRef] = []
    state: dict[NodeRef, int] = {}
    for start in sorted(nodes):
        if state.get(start):
            continue
        stack: list[tuple[NodeRef, int]] = [(start, 0)]
        path: list[NodeRef] = []
        while stack:
            ref, i = stack.pop()
            if i == 0:
                if state.get(ref) == 2:
                    continue
                if state.get(ref) == 1:
                    cycle = path[path.index(ref) :] + [ref]
                    raise SpecError(
                        f"{nodes[ref].where('input')}: cycle: " + " -> ".join(map(str, cycle))
                    )
                state[ref] = 1
                path.append(ref)
            deps = nodes[ref].inputs
            if i < len(deps):
                stack.append((ref, i + 1))
                stack.append((deps[i], 0))
            else:
                state[ref] = 2
                path.pop()
                order.append(ref)
    return order


def _missing(
    node: GraphNode, needed: Sequence[str], available: Sequence[str], what: str, *loc: Any
) -> None:
    for col in needed:
        if col not in available:
            shown = ", ".join(c for c in available if not C.is_internal(c))
            raise SpecError(
                f"{node.where(*loc)}: {what} names column '{col}', which node "
                f"'{node.ref.node}' does not receive; columns available: {shown}"
            )


def _propagate(graph: Graph, node: GraphNode) -> None:
    spec = node.spec
    upstream: list[str] = list(graph.nodes[node.inputs[0]].columns) if node.inputs else []
    handler = _PROPAGATORS[spec.kind]
    node.columns = tuple(handler(graph, node, upstream))


def _source_columns(graph: Graph, node: GraphNode, _: list[str]) -> list[str]:
    spec: m.SourceNode = node.spec
    path = node.target.resolve_path(spec.path)
    if not path.exists():
        raise SpecError(f"{node.where('path')}: source file not found: {path}")
    fmt = source_format(path, spec.format)
    if spec.split is not None and fmt != "hf":
        raise SpecError(
            f"{node.where('split')}: nodes.{node.ref.node}.split: 'split:' is for "
            "'format: hf' sources"
        )
    cols = peek_columns(path, fmt, split=spec.split)
    if spec.id is not None and spec.id not in cols:
        raise SpecError(
            f"{node.where('id')}: id column '{spec.id}' is not in {path.name} "
            f"(columns: {', '.join(cols)})"
        )
    if spec.where:
        from fdbuild.sampling import compile_where

        try:
            compile_where(spec.where)
        except ValueError as exc:
            raise SpecError(f"{node.where('where')}: nodes.{node.ref.node}.where: {exc}") from None
        for col in spec.where:
            if col not in cols:
                raise SpecError(
                    f"{node.where('where', col)}: nodes.{node.ref.node}.where.{col}: "
                    f"where rule on column '{col}', which "
                    f"{path.name} does not have (columns: {', '.join(cols)})"
                )
    return [C.ID, *[c for c in cols if c != C.ID]]


def _generate_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    spec: m.GenerateNode = node.spec
    if spec.teacher not in node.target.spec.teachers:
        raise SpecError(
            f"{node.where('teacher')}: unknown teacher '{spec.teacher}' "
            f"(teachers: {', '.join(node.target.spec.teachers) or 'none defined'})"
        )
    _conversation_form(node)
    for field, text in (("template", spec.template), ("system", spec.system)):
        if text is None:
            continue
        try:
            tpl = parse_template(text)
        except TemplateSyntaxError as exc:
            raise SpecError(
                f"{node.where(field)}: {field} of node '{node.ref.node}': {exc}"
            ) from None
        _missing(node, tpl.columns, upstream, f"{field} placeholder", field)
        if field == "template":
            node.template = tpl
    added = [C.PARENT, C.CANDIDATE]
    if spec.profiles:
        added.append(C.PROFILE)
    added += [C.SYSTEM, C.PROMPT, C.COMPLETION, C.DONE_REASON, C.key_col(node.ref.node)]
    if spec.messages is not None:
        for i, message in enumerate(spec.messages):
            try:
                tpl = parse_template(message.content)
            except TemplateSyntaxError as exc:
                raise SpecError(
                    f"{node.where('messages', i, 'content')}: "
                    f"nodes.{node.ref.node}.messages[{i}].content: {exc}"
                ) from None
            _missing(
                node,
                tpl.columns,
                upstream,
                f"messages[{i}].content placeholder",
                "messages",
                i,
                "content",
            )
        added.append(C.MESSAGES)
    if spec.parse != "none":
        try:
            parser_cls = get_parser_class(spec.parse, node.target.base_dir)
        except PluginError as exc:
            raise SpecError(plugin_message(node, "parse", exc)) from None
        node.parser = parser_cls(spec.parse_options)
        added += [*parser_cls.outputs, C.PARSE_ERROR]
    if _wants_logprobs(spec):
        added.append(C.LOGPROBS)
    teacher = node.target.spec.teachers[spec.teacher]
    if getattr(teacher, "think", None):
        added.append(C.THINKING)
    return _extend(node, upstream, added)


def _conversation_form(node: GraphNode) -> None:
    """Exactly one of ``messages:`` or ``template:`` (with an optional ``system:``); a
    conversation may open with one system message and must end with a user turn."""
    spec: m.GenerateNode = node.spec
    name = f"nodes.{node.ref.node}"
    if spec.messages is None:
        if spec.template is None:
            raise SpecError(
                f"{node.where()}: {name}: a generate node needs 'template:' (with an optional "
                "'system:') or 'messages:' (a list of {role, content})"
            )
        return
    if spec.template is not None or spec.system is not None:
        key = "template" if spec.template is not None else "system"
        raise SpecError(
            f"{node.where(key)}: {name}.{key}: give either 'messages:' or "
            "'system:'/'template:', not both (put the system prompt in messages as "
            "{role: system, content: ...})"
        )
    msgs = spec.messages
    if not msgs:
        raise SpecError(f"{node.where('messages')}: {name}.messages: the list is empty")
    for i, message in enumerate(msgs):
        if message.role == "system" and i > 0:
            raise SpecError(
                f"{node.where('messages', i, 'role')}: {name}.messages[{i}].role: a system "
                "message may only open the conversation"
            )
    if msgs[-1].role != "user":
        last = len(msgs) - 1
        raise SpecError(
            f"{node.where('messages', last, 'role')}: {name}.messages[{last}].role: the last "
            f"message must be 'user' (the teacher's reply follows it), not '{msgs[-1].role}'"
        )


def _wants_logprobs(spec: m.GenerateNode) -> bool:
    profiles = list((spec.profiles or {}).values())
    return bool(spec.decode.logprobs or any(p.logprobs for p in profiles))


def _extend(node: GraphNode, upstream: list[str], added: list[str]) -> list[str]:
    base = [c for c in upstream if c not in added or c == C.ID]
    clash = [c for c in added if c in upstream and not C.is_internal(c) and c not in (C.CANDIDATE,)]
    if clash and node.kind == "gate":
        raise SpecError(
            f"{node.where('check')}: gate '{node.ref.node}' would overwrite column(s) "
            f"{', '.join(clash)} of an earlier node; set 'prefix:' on this gate"
        )
    return base + [c for c in added if c not in base]


def _gate_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    spec: m.GateNode = node.spec
    try:
        cls = get_check_class(spec.check, node.target.base_dir)
    except PluginError as exc:
        raise SpecError(plugin_message(node, "check", exc)) from None
    from pydantic import ValidationError

    try:
        params = cls.Params.model_validate(spec.params)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            key = ".".join(loc)
            where = node.where("params", *loc)
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(cls.Params.model_fields)
                lines.append(
                    f"{where}: unknown param '{key}' for check '{spec.check}' (params: {allowed})"
                )
            else:
                lines.append(f"{where}: params.{key}: {err['msg']}")
        raise SpecError("\n".join(lines)) from None
    check = _make_check(node, cls, params)
    if getattr(cls, "needs_teacher", False):
        teacher = getattr(params, "teacher", None)
        if teacher not in node.target.spec.teachers:
            raise SpecError(
                f"{node.where('params', 'teacher')}: unknown teacher '{teacher}' "
                f"(teachers: {', '.join(node.target.spec.teachers) or 'none defined'})"
            )
        tpl_text = getattr(params, "template", None)
        if tpl_text:
            try:
                tpl = parse_template(tpl_text)
            except TemplateSyntaxError as exc:
                raise SpecError(f"{node.where('params', 'template')}: {exc}") from None
            _missing(
                node, tpl.columns, upstream, "judge template placeholder", "params", "template"
            )
    _missing(node, list(check.reads()), upstream, f"check '{spec.check}'", "params")
    outputs = list(check.outputs)
    from fdbuild.checks.keep import compile_keep

    try:
        compile_keep(spec.keep)
    except ValueError as exc:
        raise SpecError(f"{node.where('keep')}: {exc}") from None
    for key in spec.keep:
        if key not in outputs:
            raise SpecError(
                f"{node.where('keep', key)}: keep rule on '{key}', which check "
                f"'{spec.check}' does not produce (it produces: {', '.join(outputs)})"
            )
    node.check = check
    prefix = spec.prefix or ""
    added = [prefix + c for c in outputs] + [C.pass_col(node.ref.node)]
    if cls.scope == "row":
        added.append(C.key_col(node.ref.node))
    return _extend(node, upstream, added)


def _make_check(node: GraphNode, cls: type[Check[Any]], params: Any) -> Check[Any]:
    """The gate's check, its file params verified now: a file that is missing or is not
    what the check needs is a load error at that param's line, not a run-time failure."""
    spec: m.GateNode = node.spec
    try:
        check = cls(params, base_dir=node.target.base_dir)
    except ParamError as exc:
        raise SpecError(_param_message(node, exc.param, exc.message)) from None
    for name, path in check.file_deps().items():
        written = spec.params.get(name, path)
        if not path.exists():
            problem = "file not found"
        elif not path.is_file():
            problem = "not a file"
        else:
            continue
        raise SpecError(_param_message(node, name, f"{problem}: {written} ({path})"))
    return check


def plugin_message(node: GraphNode, key: str, exc: PluginError) -> str:
    """file:line: nodes.NODE.KEY: what went wrong finding or importing the plugin."""
    return f"{node.where(key)}: nodes.{node.ref.node}.{key}: {exc.message}"


def _param_message(node: GraphNode, param: str, message: str) -> str:
    return f"{node.where('params', param)}: nodes.{node.ref.node}.params.{param}: {message}"


def _select_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    spec: m.SelectNode = node.spec
    for gate in spec.gates or []:
        if C.pass_col(gate) not in upstream:
            gates = [c[len("_pass_") :] for c in C.pass_columns(upstream)]
            raise SpecError(
                f"{node.where('gates')}: '{gate}' is not a gate upstream of "
                f"'{node.ref.node}' (gates: {', '.join(gates) or 'none'})"
            )
    return upstream


VOTE_COLUMNS = ("vote_size", "vote_total", "vote_share")
PAIR_COLUMNS = (
    C.ID,
    C.PARENT,
    C.SYSTEM,
    C.PROMPT,
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
    "margin",
    "chosen_id",
    "rejected_id",
)


def _candidate_checks(
    node: GraphNode, upstream: list[str], needed: list[str], gates: list[str] | None, loc: str
) -> None:
    """vote and pairs group candidates by ``_parent``: they need a generate node upstream,
    the columns they rank by, and only gates that exist upstream."""
    if C.PARENT not in upstream:
        raise SpecError(
            f"{node.where('input')}: {node.kind} node '{node.ref.node}' groups "
            f"candidates by '{C.PARENT}', so its input must come from a generate node"
        )
    _missing(node, needed, upstream, node.kind, loc)
    for gate in gates or []:
        if C.pass_col(gate) not in upstream:
            known = [c[len("_pass_") :] for c in C.pass_columns(upstream)]
            raise SpecError(
                f"{node.where('gates')}: '{gate}' is not a gate upstream of "
                f"'{node.ref.node}' (gates: {', '.join(known) or 'none'})"
            )


def _vote_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    spec: m.VoteNode = node.spec
    _candidate_checks(node, upstream, [spec.by], spec.gates, "by")
    if spec.score:
        _missing(node, [spec.score], upstream, "vote", "score")
    return _extend(node, upstream, list(VOTE_COLUMNS))


def _pairs_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    spec: m.PairsNode = node.spec
    _candidate_checks(node, upstream, [spec.score], spec.gates, "score")
    _missing(node, [spec.response], upstream, "pairs", "response")
    _missing(node, [C.PROMPT], upstream, "pairs", "input")
    conversation = [C.MESSAGES] if C.MESSAGES in upstream else []
    return [*PAIR_COLUMNS[:4], *conversation, *PAIR_COLUMNS[4:]]


def judge_score_columns(graph: Graph, ref: NodeRef) -> list[str]:
    """The score columns of the judge gates at or upstream of ``ref`` (prefix + score)."""
    out: list[str] = []
    stack, seen = [ref], set()
    while stack:
        cur = stack.pop()
        if cur in seen or cur not in graph.nodes:
            continue
        seen.add(cur)
        node = graph.nodes[cur]
        if node.kind == "gate" and node.spec.check == "judge":
            out.append((node.spec.prefix or "") + "score")
        stack.extend(node.inputs)
    return sorted(set(out))


def compare_plan(graph: Graph, node: GraphNode) -> tuple[list[str], list[str]]:
    """The gates and the score columns a compare node compares (given, or found on
    both sides), checked against both sides' columns."""
    spec: m.CompareNode = node.spec
    a, b = (graph.nodes[r] for r in node.inputs)
    both = [c for c in a.columns if c in b.columns]
    if spec.gates is not None:
        gates = list(spec.gates)
        for gate in gates:
            for side, label in ((a, "a"), (b, "b")):
                if C.pass_col(gate) not in side.columns:
                    known = [c[len("_pass_") :] for c in C.pass_columns(list(side.columns))]
                    raise SpecError(
                        f"{node.where('gates')}: nodes.{node.ref.node}.gates: '{gate}' is not "
                        f"a gate upstream of side {label} '{side.ref.node}' "
                        f"(gates: {', '.join(known) or 'none'})"
                    )
    else:
        gates = [c[len("_pass_") :] for c in C.pass_columns(both)]
    if spec.scores is not None:
        scores = list(spec.scores)
        for col in scores:
            for side, label in ((a, "a"), (b, "b")):
                if col not in side.columns:
                    raise SpecError(
                        f"{node.where('scores')}: nodes.{node.ref.node}.scores: column '{col}' "
                        f"is not a column of side {label} '{side.ref.node}'"
                    )
    else:
        found = set(judge_score_columns(graph, a.ref)) & set(judge_score_columns(graph, b.ref))
        scores = sorted(c for c in found if c in both)
    if not gates and not scores:
        raise SpecError(
            f"{node.where()}: compare node '{node.ref.node}' has nothing to compare: "
            f"'{a.ref.node}' and '{b.ref.node}' share no gate and no score column"
        )
    key = C.ID if spec.on == "id" else C.PARENT
    for side, label in ((a, "a"), (b, "b")):
        if key not in side.columns:
            raise SpecError(
                f"{node.where('on')}: nodes.{node.ref.node}.on: {spec.on} joins on '{key}', "
                f"which side {label} '{side.ref.node}' does not have (only rows a generate "
                "node made have a parent)"
            )
    return gates, scores


def compare_columns(gates: list[str], scores: list[str], text: bool) -> list[str]:
    """A compare node's output: one row per joined pair."""
    cols = [C.ID, "a_id", "b_id"]
    for gate in gates:
        cols += [f"a_pass_{gate}", f"b_pass_{gate}"]
    for col in scores:
        cols += [f"a_{col}", f"b_{col}"]
    if text:
        cols += [f"a_{C.COMPLETION}", f"b_{C.COMPLETION}"]
    return cols


def _compare_columns(graph: Graph, node: GraphNode, _: list[str]) -> list[str]:
    gates, scores = compare_plan(graph, node)
    a, b = (graph.nodes[r] for r in node.inputs)
    return compare_columns(gates, scores, C.COMPLETION in a.columns and C.COMPLETION in b.columns)


def _export_columns(graph: Graph, node: GraphNode, upstream: list[str]) -> list[str]:
    from fdbuild.exports import validate_export

    validate_export(node, upstream)
    return upstream


_PROPAGATORS = {
    "source": _source_columns,
    "generate": _generate_columns,
    "gate": _gate_columns,
    "select": _select_columns,
    "vote": _vote_columns,
    "pairs": _pairs_columns,
    "compare": _compare_columns,
    "export": _export_columns,
}
