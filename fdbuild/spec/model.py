"""Pydantic models of a target file: one per YAML section and one per node kind.

Every model forbids unknown keys and is frozen (STYLE H9): a typo fails to load instead
of falling back to a default. Each YAML field is named once, here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

NODE_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- teachers


class TeacherBase(Strict):
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight. Not keyed.")
    timeout_s: float = Field(240.0, gt=0, description="Per-request timeout. Not keyed.")
    retries: int = Field(4, ge=0, le=20, description="Retries on retryable errors. Not keyed.")


class HostEntry(Strict):
    """One server of a teacher pool, with its own bound of requests in flight."""

    url: str = Field(min_length=1, description="The server, as `host`/`base_url` would be.")
    concurrency: int | None = Field(
        None, ge=1, le=256, description="Requests in flight here; default: the teacher's."
    )


HostItem = Annotated[str, Field(min_length=1)] | HostEntry

HOSTS_DESCRIPTION = (
    "Several servers of the same model: a list of URLs or {url, concurrency} mappings "
    "(the teacher's concurrency is each host's default). Requests go to the least loaded "
    "healthy host; every host must report the same digest. Never keyed."
)


def _check_hosts(
    hosts: list[str | HostEntry] | None, info: ValidationInfo, single: str
) -> list[str | HostEntry] | None:
    """``hosts`` excludes the one-server key; a URL listed twice is a typo, not a weight."""
    if hosts is None:
        return None
    if info.data.get(single) is not None:
        raise ValueError(
            f"'{single}' and 'hosts' are mutually exclusive: list every server under "
            f"'hosts' (a --set teachers.<name>.{single}=null drops the file's '{single}')"
        )
    seen: set[str] = set()
    for item in hosts:
        url = (item if isinstance(item, str) else item.url).strip().rstrip("/")
        if url in seen:
            raise ValueError(f"host {url!r} is listed twice")
        seen.add(url)
    return hosts


class OllamaTeacher(TeacherBase):
    provider: Literal["ollama"] = "ollama"
    model: str = Field(min_length=1, description="Ollama model tag, e.g. qwen2.5-coder:7b.")
    host: str | None = Field(None, description="Default: $OLLAMA_HOST, else localhost:11434.")
    hosts: list[HostItem] | None = Field(None, min_length=1, description=HOSTS_DESCRIPTION)
    think: bool | Literal["low", "medium", "high", "max"] | None = Field(
        None, description="Sent as `think` (keyed). Unset: the server's default."
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_or_host(
        cls, hosts: list[str | HostEntry] | None, info: ValidationInfo
    ) -> list[str | HostEntry] | None:
        return _check_hosts(hosts, info, "host")


class LlamaCppTeacher(TeacherBase):
    provider: Literal["llamacpp"]
    model: str | None = Field(None, description="A shipped model name, e.g. smollm2-135m.")
    model_path: str | None = Field(None, description="Path to any GGUF file.")
    n_ctx: int = Field(2048, ge=128)
    n_threads: int | None = Field(None, ge=1)
    concurrency: int = Field(1, ge=1, le=1, description="One request at a time per model.")

    @model_validator(mode="after")
    def _one_model(self) -> LlamaCppTeacher:
        """Checked at load (exit 2), not when the build first reaches the teacher."""
        if (self.model is None) == (self.model_path is None):
            given = "both" if self.model is not None else "neither"
            raise ValueError(
                f"a llamacpp teacher needs exactly one of 'model' (a bundled model, e.g. "
                f"smollm2-135m) or 'model_path' (a GGUF file); {given} given (a --set KEY=null "
                "removes a key)"
            )
        return self


class OpenAITeacher(TeacherBase):
    provider: Literal["openai"]
    model: str = Field(min_length=1)
    base_url: str | None = Field(
        None, min_length=1, description="e.g. http://localhost:8000/v1 (or give `hosts`)."
    )
    hosts: list[HostItem] | None = Field(
        None, min_length=1, description=HOSTS_DESCRIPTION + " Each URL as base_url."
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the key.")
    revision: str | None = Field(None, description="Declared weights revision (keyed).")
    server: Literal["vllm", "llamacpp", "sglang", "llama-cpp-python", "openai"] | None = Field(
        None,
        description="The server software: decode options are sent under its field names, "
        "and one it has no field for fails to load (keyed when set).",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields sent verbatim in every request body (a server's own options; keyed).",
    )

    @field_validator("hosts")
    @classmethod
    def _hosts_or_base_url(
        cls, hosts: list[str | HostEntry] | None, info: ValidationInfo
    ) -> list[str | HostEntry] | None:
        return _check_hosts(hosts, info, "base_url")

    @model_validator(mode="after")
    def _a_server(self) -> OpenAITeacher:
        if self.base_url is None and self.hosts is None:
            raise ValueError(
                "an openai teacher needs 'base_url' (one server, e.g. "
                "http://localhost:8000/v1) or 'hosts' (several)"
            )
        return self


class PluginTeacher(TeacherBase):
    """A teacher served by a plugin provider (docs/plugins.md): ``provider`` is an entry
    point name of ``fdbuild.providers``, ``module:Name`` or ``./file.py:Name``. The class
    is built as ``Name(model=..., timeout_s=..., **options)``; what its ``resolve()``
    returns is the teacher's identity (keyed), so ``options`` are not keyed themselves."""

    provider: str = Field(min_length=1)
    model: str | None = Field(None, description="Passed to the provider as `model`.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the provider's constructor."
    )


BUILTIN_PROVIDERS = ("ollama", "llamacpp", "openai")


def _teacher_tag(value: Any) -> str:
    """Built-in providers by name; any other ``provider:`` is a plugin."""
    provider = (
        value.get("provider") if isinstance(value, dict) else getattr(value, "provider", None)
    )
    return provider if provider in BUILTIN_PROVIDERS else "plugin"


Teacher = Annotated[
    Union[
        Annotated[OllamaTeacher, Tag("ollama")],
        Annotated[LlamaCppTeacher, Tag("llamacpp")],
        Annotated[OpenAITeacher, Tag("openai")],
        Annotated[PluginTeacher, Tag("plugin")],
    ],
    Discriminator(_teacher_tag),
]

# --------------------------------------------------------------------------- decode


class Decode(Strict):
    """Decode options. The options given are sent, plus ``seed`` (base seed + candidate
    index, base 0 when unset); exactly what is sent is keyed."""

    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    typical_p: float | None = Field(None, ge=0, le=1)
    repeat_penalty: float | None = Field(None, ge=0)
    repeat_last_n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = Field(None, description="Base seed; candidate k is sent seed + k.")
    num_predict: int | None = Field(None, ge=-2)
    num_ctx: int | None = Field(None, ge=1)
    num_keep: int | None = None
    stop: list[str] | None = None
    logprobs: bool | None = Field(None, description="Ask for per-token logprobs (keyed).")
    top_logprobs: int | None = Field(None, ge=0, le=20)


# --------------------------------------------------------------------------- nodes


class NodeBase(Strict):
    description: str | None = Field(None, description="Free text. Never keyed.")


class Sample(Strict):
    """A subset of a source's rows, chosen by a hash of (seed, row id): see sampling.py."""

    fraction: float | None = Field(None, gt=0, le=1, description="Keep each id with this chance.")
    n: int | None = Field(None, ge=1, description="Keep exactly n rows (all, if fewer).")
    seed: int = Field(0, description="Another seed, another subset.")

    @model_validator(mode="after")
    def _one_size(self) -> Sample:
        if (self.fraction is None) == (self.n is None):
            raise ValueError("a sample takes exactly one of 'fraction' or 'n'")
        return self


class SourceNode(NodeBase):
    kind: Literal["source"]
    path: str = Field(min_length=1, description=".jsonl, .parquet, .csv, or a folder (hf)")
    id: str | None = Field(None, description="Row id column; default: hash of the row.")
    format: Literal["jsonl", "parquet", "csv", "hf"] | None = None
    split: str | None = Field(
        None, min_length=1, description="format hf: the split to read (default: the only one)."
    )
    sample: Sample | None = Field(None, description="Keep a stable subset of the rows (keyed).")
    where: dict[str, Any] | None = Field(
        None, description="Keep rows whose columns match, as a gate's keep: (keyed)."
    )


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, description="A {column} template.")


class GenerateNode(NodeBase):
    kind: Literal["generate"]
    input: str
    teacher: str
    system: str | None = None
    template: str | None = Field(None, min_length=1)
    messages: list[Message] | None = Field(
        None, description="A conversation of {column} templates, instead of system/template."
    )
    decode: Decode = Decode()
    profiles: dict[str, Decode] | None = Field(
        None, description="Several decode profiles; each is merged over `decode`."
    )
    n: int = Field(1, ge=1, le=1000, description="Candidates per input row (and profile).")
    parse: str = Field(
        "none",
        min_length=1,
        description="none, a built-in parser (sql, rationale, json, python) or a plugin: "
        "an entry point name, module:Name or ./file.py:Name (checked when the graph loads).",
    )
    parse_options: dict[str, str] = Field(default_factory=dict)
    format: Literal["json"] | dict[str, Any] | None = Field(
        None, description="Structured output: 'json' or a JSON schema (keyed)."
    )
    on_truncation: Literal["fail", "keep"] = Field(
        "fail",
        description="A reply cut by num_predict: a recorded failure (retried next "
        "build), or kept as the result (done_reason 'length') for models that ramble.",
    )


class GateNode(NodeBase):
    kind: Literal["gate"]
    input: str
    check: str
    params: dict[str, Any] = Field(default_factory=dict)
    keep: dict[str, Any] = Field(default_factory=dict)
    prefix: str | None = Field(None, description="Prefix for this gate's columns.")


class SelectNode(NodeBase):
    kind: Literal["select"]
    input: str
    gates: list[str] | None = Field(None, description="Only these gates' verdicts count.")


class VoteNode(NodeBase):
    """Data Distillation's selection: one candidate per input row (grouped by ``_parent``).

    Without ``score`` the pick is the largest group of candidates whose ``by`` values are
    equal (execution-result agreement); with ``score`` it is the best-scored candidate
    (ties broken by the larger agreement group, then by candidate order).
    """

    kind: Literal["vote"]
    input: str
    by: str = Field("result_sig", description="Column whose equal values form a group.")
    score: str | None = Field(None, description="Pick the best by this column instead.")
    only_passed: bool = Field(True, description="Only candidates passing the gates vote.")
    gates: list[str] | None = Field(
        None, description="With only_passed: the gates that count (default: all upstream)."
    )
    min_share: float = Field(
        0.0, ge=0, le=1, description="Drop inputs whose pick has a smaller vote share."
    )


class PairsNode(NodeBase):
    """DPKD's preference pairs: per input, the best candidate by ``score`` (chosen) against
    a worse one (rejected), kept when the score margin reaches ``min_margin``."""

    kind: Literal["pairs"]
    input: str
    score: str = Field("score", description="Column ranking the candidates (judge score).")
    min_margin: float = Field(0.0, ge=0, description="Smallest chosen - rejected score kept.")
    require_passed: bool = Field(True, description="The chosen one must pass the gates.")
    gates: list[str] | None = Field(
        None, description="With require_passed: the gates that count (default: all upstream)."
    )
    response: str = Field("completion", description="Column holding the chosen/rejected text.")
    rejected: Literal["worst", "all"] = Field(
        "worst", description="worst: one pair per input; all: one per worse candidate."
    )


class CompareNode(NodeBase):
    """Two nodes' rows joined by id, and how far they agree: per gate present on both
    sides, each side's pass rate, pass agreement and Cohen's kappa; per score column
    (a judge's ``score``), MAE, RMSE, Pearson and Spearman (fdbuild/nodes/compare.py)."""

    kind: Literal["compare"]
    a: str = Field(description="One side, e.g. the teacher's gated rows.")
    b: str = Field(description="The other side, e.g. the student's gated rows.")
    on: Literal["id", "parent"] = Field(
        "id",
        description="id: join on `_id` (`<row>/<k>` after a generate node: same row, same "
        "candidate); parent: join on `_parent` (the source row), one row per side and row.",
    )
    gates: list[str] | None = Field(
        None, description="Gates compared (default: every gate upstream of both sides)."
    )
    scores: list[str] | None = Field(
        None, description="Numeric columns compared (default: the judges' score columns)."
    )


class ExportNode(NodeBase):
    kind: Literal["export"]
    input: str
    format: str = Field(
        min_length=1,
        description="jsonl, parquet, sft_jsonl, dpo_jsonl, mlx_jsonl, multitask_jsonl or a "
        "plugin exporter (entry point name, module:Name, ./file.py:Name).",
    )
    path: str = Field(min_length=1)
    columns: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    allow_outside: bool = Field(
        False,
        description="Allow a path outside the project folder. Never .fdbuild/, the lock, "
        "a target, source or other input file. Not keyed.",
    )


Node = Annotated[
    Union[
        SourceNode,
        GenerateNode,
        GateNode,
        SelectNode,
        VoteNode,
        PairsNode,
        CompareNode,
        ExportNode,
    ],
    Field(discriminator="kind"),
]


class Require(Strict):
    """One quality bar: a figure of a node must reach ``min`` and/or stay under ``max``.

    Figures: ``rows`` (and ``rows_in``, ``failed``, ``teacher_calls``) of any node; a
    gate's quality report (``pass_rate``, ``gold_match_rate``, ``score_mean``, ...); a
    compare node's ``joined``, ``only_a``, ``only_b``, ``GATE.kappa``, ``SCORE.mae`` ..."""

    node: str = Field(min_length=1, description="A node of this target.")
    figure: str = Field(min_length=1, description="e.g. rows, gold_match_rate, executed.kappa")
    min: float | None = Field(None, description="The figure must be >= min.")
    max: float | None = Field(None, description="The figure must be <= max.")

    @model_validator(mode="after")
    def _a_bound(self) -> Require:
        if self.min is None and self.max is None:
            raise ValueError("a require bar needs 'min' or 'max' (or both)")
        return self


class TargetFile(Strict):
    fdbuild: Literal[1] = Field(description="Format version.")
    name: str | None = Field(None, pattern=NODE_NAME)
    description: str | None = None
    teachers: dict[str, Teacher] = Field(default_factory=dict)
    nodes: dict[str, Node]
    require: list[Require] = Field(
        default_factory=list,
        description="Quality bars checked after the build; a miss exits 6 (fdbuild/require.py).",
    )


def node_inputs(node: BaseModel) -> list[str]:
    """The input references a node names (empty for sources; two for a compare)."""
    if isinstance(node, CompareNode):
        return [node.a, node.b]
    value = getattr(node, "input", None)
    return [value] if isinstance(value, str) else []
