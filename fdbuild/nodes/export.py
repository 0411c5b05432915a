"""``export`` nodes: write the input rows to a training-ready file, atomically, and a
manifest beside it.

Most formats write one file at ``path``; ``mlx_jsonl`` writes a folder (train and valid
files). The export's digest is the file's content digest, or for several files a hash of
their names and digests.

Beside them, the folder's ``README.md`` dataset card (``fdbuild.exports.card``) lists
every export of the folder; a build that finds an export current still puts a lost or
stale card right (from the manifests, without re-exporting).

The manifest, ``<path>.manifest.json``, says what the export holds: format, records,
input rows, content digest, fields, the node it came from and its rows digest, plus
format details (MLX split sizes, multi-task counts). It holds nothing about the run
(no run_id, no time): an export is content-addressed, and a rebuild of the same rows
must give byte-identical files, manifest included. The run that produced it is found
the other way round: its run record lists this export node with the same digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fdbuild.execute.context import NodeStats
from fdbuild.execute.streams import Input, Sink
from fdbuild.exports import card, export_version, exporter_class
from fdbuild.keys import content_hash, file_digest
from fdbuild.nodes.base import NodeKind, Outcome, only_digest
from fdbuild.spec.export_paths import check_export_paths
from fdbuild.spec.graph import GraphNode
from fdbuild.store.atomic import atomic_write_text

MANIFEST_SCHEMA = 1


def export_recipe(build: Any, node: GraphNode) -> dict[str, Any]:
    spec = node.spec
    return {
        "kind": "export",
        "format": spec.format,
        "path": build.ctx.path_for_record(node.target.resolve_path(spec.path)),
        "columns": spec.columns,
        "options": spec.options or None,
        "manifest": MANIFEST_SCHEMA,
        **export_version(node),
    }


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def _files(node: GraphNode, exporter: Any = None) -> dict[str, Path]:
    exporter = exporter or exporter_class(node)(node.spec)
    return exporter.files(node.target.resolve_path(node.spec.path))


def export_digest(files: dict[str, Path]) -> str:
    """One file: its content digest (what ``fdbuild.keys.file_digest`` gives for it);
    several: the hash of their names and digests."""
    if len(files) == 1:
        return file_digest(next(iter(files.values())))
    return content_hash(
        {"export_files": {name: file_digest(p) for name, p in sorted(files.items())}}
    )


def run_export(build: Any, node: GraphNode, input_digest: str) -> tuple[str, int]:
    """Returns (export digest, records written)."""
    _recheck_paths(build, node)
    path = node.target.resolve_path(node.spec.path)
    exporter = exporter_class(node)(node.spec)
    schema = build.outputs.schema(input_digest)
    rows = build.outputs.rows(input_digest)
    input_rows = 0

    def counted() -> Any:
        nonlocal input_rows
        for row in rows:
            input_rows += 1
            yield row

    count = exporter.write(counted(), path, schema)
    files = _files(node, exporter)
    digest = export_digest(files)
    manifest = {
        "fdbuild_manifest": MANIFEST_SCHEMA,
        "format": node.spec.format,
        "path": path.name,
        "records": count,
        "input_rows": input_rows,
        "digest": digest,
        "fields": exporter.fields(schema),
        "source": {"node": str(node.inputs[0]), "rows_digest": input_digest},
        **exporter.manifest_extra(),
        "card": card.provenance(build, node, count),
    }
    if len(files) > 1:
        manifest["files"] = {
            name: {"digest": file_digest(p), "bytes": p.stat().st_size}
            for name, p in sorted(files.items())
        }
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(manifest_path(path), text)
    card.write_card(path.parent, warn=build.ctx.reporter.message)
    return digest, count


def _recheck_paths(build: Any, node: GraphNode) -> None:
    """The load-time path check again, against the project this build really writes to,
    when the graph was checked against another folder (loaded without the build's root).
    A refusal here still comes before this export writes anything."""
    root = build.ctx.project.root.resolve()
    if build.graph.root != root:
        check_export_paths(build.graph, root, [node])


def file_stamp(node: GraphNode) -> dict[str, Any]:
    """Size and mtime of every exported file and the manifest: a cheap check that they
    are still ours."""
    files = _files(node)
    paths = [
        *(files[name] for name in sorted(files)),
        manifest_path(node.target.resolve_path(node.spec.path)),
    ]
    stamps = []
    for p in paths:
        st = p.stat()
        stamps.append([st.st_size, st.st_mtime_ns])
    return {"files": stamps}


def export_is_current(node: GraphNode, memo: dict) -> bool:
    """True when the exported files and manifest still hold what the memo says. Sizes
    and mtimes unchanged are trusted (a no-op rebuild must not re-hash a large export);
    otherwise the content digests decide."""
    path = node.target.resolve_path(node.spec.path)
    files = _files(node)
    manifest = manifest_path(path)
    if (
        memo.get("digest") is None
        or not manifest.exists()
        or not all(p.exists() for p in files.values())
    ):
        return False
    stamp = memo.get("stamp")
    if stamp is None or stamp != file_stamp(node):
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8")).get("digest")
        except (OSError, ValueError):
            return False
        if recorded != memo["digest"] or export_digest(files) != memo["digest"]:
            return False
    # The folder's README.md card is shared by the folder's exports (so not in the stamp):
    # a lost, edited or stale one is written again from the manifests, nothing re-exported.
    card.write_card(path.parent)
    return True


class ExportKind(NodeKind):
    """Writes files outside the store: its memo holds their digest and a file stamp."""

    name = "export"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return export_recipe(build, node)

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        if build.options.dry_run:  # would write every input row
            return Outcome(digest=None, rows=stats.rows_in)
        digest, rows = run_export(build, node, only_digest(inputs))
        stats.computed = rows
        return Outcome(digest=digest, rows=rows)

    def memo_valid(self, build: Any, node: GraphNode, memo: dict[str, Any]) -> bool:
        return bool(build.options.dry_run or export_is_current(node, memo))

    def memo_extra(self, node: GraphNode) -> dict[str, Any]:
        return {"stamp": file_stamp(node)}

    def reads_inputs(self, build: Any) -> bool:
        return not build.options.dry_run

    def write_target(
        self, build: Any, node: GraphNode, input_digests: list[str | None]
    ) -> tuple[Path, Any]:
        return node.target.resolve_path(node.spec.path).parent, None
