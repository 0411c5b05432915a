"""Dataset cards: a ``README.md`` in the Hugging Face dataset-card format in every export
folder, so ``datasets.load_dataset(folder)`` finds the configs and a reader on the Hub
sees where the data came from.

One card per folder, listing every fdbuild export in it (one ``configs`` entry each,
named after the export node; the first, by name, is the ``default``). The card is a pure
function of the manifests in the folder (``<path>.manifest.json``, whose ``card`` entry
the export writes: target, teachers with their digests, gates with params and keep
rules, and the funnel up to that export) and of the exported files' field types: no run
id, no clock, so rebuilding the same rows gives the same bytes, as for the manifest. The
run that wrote the rows is found the usual way: its run record lists the export with the
card's digest.

A ``README.md`` that fdbuild did not write (no ``MARK`` line) is never replaced: the card
is skipped, with a warning.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from fdbuild.store.atomic import atomic_write_text

CARD_NAME = "README.md"
MARK = "<!-- written by fdbuild: a dataset card of the exports in this folder -->"
SAMPLE_RECORDS = 200
_SPLITS = {"train": "train", "valid": "validation", "validation": "validation", "test": "test"}


def card_path(export_path: Path) -> Path:
    """The card of an export: ``README.md`` in the folder holding the export's path."""
    return export_path.parent / CARD_NAME


def ours(path: Path) -> bool:
    """True when ``path`` is missing or is a card fdbuild wrote (safe to replace)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return MARK in text


def manifests(folder: Path) -> list[dict[str, Any]]:
    """Every fdbuild manifest in ``folder`` whose export is still there, sorted by path."""
    out = []
    for path in sorted(folder.glob("*.manifest.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and "fdbuild_manifest" in data
            and (folder / data["path"]).exists()
        ):
            out.append(data)
    return out


def data_files(manifest: dict[str, Any], folder: Path) -> list[tuple[str, str]]:
    """(split, path relative to the folder) of one export. A folder export (MLX) names
    its files in the manifest when there are several, else holds the one."""
    name = manifest["path"]
    files = manifest.get("files")
    if not files and (folder / name).is_dir():
        files = {p.name: None for p in (folder / name).iterdir() if p.suffix == ".jsonl"}
    if not files:
        return [("train", name)]
    out = []
    for file in sorted(files):
        stem = file.split(".")[0]
        out.append((_SPLITS.get(stem, stem), f"{name}/{file}"))
    return out


# --------------------------------------------------------------------------- features


def _json_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return {k: _json_type(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_merge_all(_json_type(v) for v in value)]
    return None


def _merge(a: Any, b: Any) -> Any:
    """The type both values fit (ints widen to floats; None is unknown)."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, str) and isinstance(b, str) and {a, b} == {"int64", "float64"}:
        return "float64"
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) for k in {**a, **b}}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(a[0], b[0])]
    return "string"


def _merge_all(types: Iterator[Any]) -> Any:
    out = None
    for t in types:
        out = _merge(out, t)
    return out


def _arrow_type(dtype: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype):
        return "int64"
    if pa.types.is_floating(dtype):
        return "float64"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_struct(dtype):
        return {
            dtype.field(i).name: _arrow_type(dtype.field(i).type) for i in range(dtype.num_fields)
        }
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return [_arrow_type(dtype.value_type)]
    if pa.types.is_null(dtype):
        return None
    return "string"


def record_types(path: Path) -> dict[str, Any]:
    """Field -> type of an exported file: a Parquet file's schema, or the first
    ``SAMPLE_RECORDS`` JSON lines merged."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        return {f.name: _arrow_type(f.type) for f in schema}
    types: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= SAMPLE_RECORDS:
                break
            record = json.loads(line)
            for key, value in record.items():
                types[key] = _merge(types.get(key), _json_type(value))
    return types


def _feature(name: str, kind: Any) -> dict[str, Any]:
    """The ``dataset_info.features`` entry of one field, as the Hub writes them."""
    if kind is None:
        return {"name": name, "dtype": "null"}
    if isinstance(kind, str):
        return {"name": name, "dtype": kind}
    if isinstance(kind, dict):
        return {"name": name, "struct": [_feature(k, v) for k, v in kind.items()]}
    inner = kind[0]
    if isinstance(inner, dict):
        return {"name": name, "list": [_feature(k, v) for k, v in inner.items()]}
    return {"name": name, "sequence": "null" if inner is None else inner}


# --------------------------------------------------------------------------- the card


def _config_names(found: list[dict[str, Any]]) -> list[str]:
    names = [(m.get("card") or {}).get("export") or m["path"].split(".")[0] for m in found]
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


def render_card(folder: Path) -> str | None:
    """The card's text for ``folder``, or None when it holds no fdbuild export."""
    found = manifests(folder)
    if not found:
        return None
    names = _config_names(found)
    kinds = [_kind(data_files(m, folder)[0][1]) for m in found]
    module = max(sorted(set(kinds)), key=kinds.count)  # the one loader the folder gets
    configs: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    apart: list[tuple[str, str, list[tuple[str, str]]]] = []
    for name, manifest, kind in zip(names, found, kinds, strict=True):
        files = data_files(manifest, folder)
        if kind != module:
            apart.append((name, kind, files))
            continue
        config: dict[str, Any] = {"config_name": name}
        if not configs:
            config["default"] = True
        config["data_files"] = [{"split": s, "path": p} for s, p in files]
        configs.append(config)
        types = record_types(folder / files[0][1])
        splits = _split_counts(manifest, files)
        infos.append(
            {
                "config_name": name,
                "features": [_feature(k, v) for k, v in types.items()],
                "splits": [
                    {"name": s, "num_bytes": (folder / p).stat().st_size, "num_examples": n}
                    for (s, n), (_, p) in zip(splits, files, strict=True)
                ],
            }
        )
    header = _yaml({"configs": configs, "dataset_info": infos})
    body = [MARK, "", f"# {folder.name or 'dataset'}", ""]
    body.append(
        "Built by [fdbuild](https://github.com/) (a declarative build of LLM distillation "
        "data). Each config below is one export; its provenance is what the build recorded."
    )
    for name, kind, files in apart:
        body.append(
            f"\n`{name}` is {kind}, unlike the {module} configs above (`datasets` loads one "
            f'format per folder): `load_dataset("{kind}", data_files="{files[0][1]}")`.'
        )
    for name, manifest in zip(names, found, strict=True):
        body += _section(name, manifest)
    return f"---\n{header}---\n\n" + "\n".join(body) + "\n"


def _kind(path: str) -> str:
    return "parquet" if path.endswith(".parquet") else "json"


def _split_counts(manifest: dict[str, Any], files: list[tuple[str, str]]) -> list[tuple[str, int]]:
    split = manifest.get("split") or {}
    if len(files) == 1:
        return [(files[0][0], int(manifest.get("records") or 0))]
    out = []
    for s, p in files:
        stem = Path(p).name.split(".")[0]
        out.append((s, int(split.get(stem, split.get(s, 0)) or 0)))
    return out


def _yaml(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def _section(name: str, manifest: dict[str, Any]) -> list[str]:
    card = manifest.get("card") or {}
    out = ["", f"## `{name}`", ""]
    out.append(
        f"- file: `{manifest['path']}` ({manifest.get('format')}), "
        f"{manifest.get('records')} records from {manifest.get('input_rows')} input rows"
    )
    out.append(f"- content digest: `{manifest.get('digest')}`")
    source = manifest.get("source") or {}
    out.append(f"- rows: node `{source.get('node')}`, rows digest `{source.get('rows_digest')}`")
    if card.get("target"):
        out.append(f"- target: `{card['target']}` (`{card.get('file')}`)")
    for tname, t in sorted((card.get("teachers") or {}).items()):
        out.append(
            f"- teacher `{tname}`: {t.get('provider')} `{t.get('model')}`, digest `{t.get('digest')}`"
        )
    gates = card.get("gates") or []
    if gates:
        out += ["", "| gate | check | params | keep |", "| --- | --- | --- | --- |"]
        for g in gates:
            out.append(
                f"| `{g['node']}` | {g['check']} | `{_flat(g.get('params'))}` | `{_flat(g.get('keep'))}` |"
            )
    funnel = card.get("funnel") or []
    if funnel:
        out += ["", "| stage | node | rows |", "| --- | --- | --- |"]
        out += [f"| {s['stage']} | `{s['node']}` | {s['rows']} |" for s in funnel]
    out += [
        "",
        "The run that built these rows lists this export with the digest above (`fdbuild log`).",
    ]
    return out


def _flat(value: Any) -> str:
    text = json.dumps(value or {}, sort_keys=True, ensure_ascii=False)
    return text.replace("|", "\\|").replace("`", "'")


def write_card(folder: Path, warn: Any = None) -> Path | None:
    """Write the folder's card when it changed (atomically); skip a README.md that is not
    ours. Returns the card's path, or None when none was written or kept."""
    path = folder / CARD_NAME
    if not ours(path):
        if warn is not None:
            warn(f"{path} was not written by fdbuild; its dataset card is not written")
        return None
    text = render_card(folder)
    if text is None:
        return None
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except FileNotFoundError:
        pass
    atomic_write_text(path, text)
    return path


# --------------------------------------------------------------------------- provenance


def provenance(build: Any, node: Any, records: int) -> dict[str, Any]:
    """The manifest's ``card`` entry of an export being written: its target, the
    teachers and gates upstream of it (along its single-input chain) and the funnel.
    Only content-derived values: no run id, no clock, no server version."""
    graph = build.graph
    chain = [node]
    while len(chain[-1].inputs) == 1 and chain[-1].inputs[0] in graph.nodes:
        chain.append(graph.nodes[chain[-1].inputs[0]])
    chain.reverse()
    teachers: dict[str, Any] = {}
    gates = []
    for n in chain:
        names = []
        if n.kind == "generate":
            names.append(n.spec.teacher)
        if n.kind == "gate":
            gates.append(
                {
                    "node": n.ref.node,
                    "check": n.spec.check,
                    "params": n.spec.params,
                    "keep": n.spec.keep,
                }
            )
            if isinstance(n.spec.params.get("teacher"), str):
                names.append(n.spec.params["teacher"])
        for name in names:
            ident = build.run.identities.get((n.target.name, name)) or {}
            teachers[name] = {k: ident.get(k) for k in ("provider", "model", "digest")}
    return {
        "export": node.ref.node,
        "target": node.target.name,
        "file": build.ctx.path_for_record(node.target.path),
        "teachers": teachers,
        "gates": json.loads(json.dumps(gates, default=str)),
        "funnel": _funnel_stages(build, chain, records),
    }


def _funnel_stages(build: Any, chain: list[Any], records: int) -> list[dict[str, Any]]:
    """``reports.funnel``'s stages for this export, from this build's node outputs."""
    from fdbuild.funnel import _funnel, artifact_reader

    nodes: dict[str, Any] = {}
    for n in chain[:-1]:
        result = build.run.results.get(n.ref)
        if result is None:
            return []
        nodes[str(n.ref)] = {
            "kind": n.kind,
            "recipe": result.recipe,
            "output": {"digest": result.digest, "rows": result.rows},
            "stats": {"rows_in": result.stats.rows_in, "failed": result.stats.failed},
        }
    nodes[str(chain[-1].ref)] = {"kind": "export", "output": {"rows": records}}
    try:
        found = _funnel({"nodes": nodes}, list(nodes), artifact_reader(build.ctx.artifacts))
    except (OSError, KeyError, ValueError):
        return []
    if not found:
        return []
    return [
        {"stage": s["stage"], "node": s["node"].split("#")[-1], "rows": s["rows"]}
        for s in found["stages"]
    ]
