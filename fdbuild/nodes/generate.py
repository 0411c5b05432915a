"""``generate`` nodes: render, key, look up, ask the teacher for the misses, write in order.

One streamed pass over the input (live from the upstream, or from its artifact): for
every (row, profile, candidate) render the request and compute its key once. A hit takes
its place in the output order at once; a miss goes to one of the teacher's workers (as
many as the teacher takes at once, over all of its hosts). Each finished generation is
put in the row cache the moment it returns, then its row is written, in input order, as
soon as the rows before it are (``OrderedWork``: at most a bounded window of replies
waits, so memory stays bounded). Rows are passed on in chunks whenever the next reply is
not in yet, so a judge downstream starts on the first ones. Failures and truncations are
recorded on the run and never cached. Anything a worker raises (a failed cache write:
disk full) cancels the other workers and the producer and ends the build with that
error; nothing hangs on a full queue. A cached reply that is not valid Unicode (written
by an older fdbuild) is dropped from the cache and recorded as a failure
``invalid_text``, so the next build asks for it again. Two rows asking the very same
request while it is in flight share one call.

A generation key holds the teacher (provider, tag, digest), the exact messages, every
option sent (with the per-candidate seed ``seed + k``), the candidate index and
profile, the output format, think/logprobs flags, and the key-schema version.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fdbuild import columns as C
from fdbuild.errors import OfflineMiss, TeacherCallError
from fdbuild.execute.context import Failure, NodeStats
from fdbuild.execute.ordered import OrderedWork
from fdbuild.execute.schema import arrow_type, extend_schema, logprobs_type
from fdbuild.execute.streams import CHUNK_ROWS, Input, Sink, due
from fdbuild.execute.teachers import UNAVAILABLE
from fdbuild.execute.text_check import INVALID_TEXT, check_record, describe_invalid
from fdbuild.keys import content_hash
from fdbuild.nodes.base import NodeKind, Outcome, teacher_capacity, teacher_identity
from fdbuild.plugins import keyed_version
from fdbuild.providers import TeacherIdentity, TeacherRequest
from fdbuild.spec.graph import GraphNode
from fdbuild.spec.template import parse_template
from fdbuild.store.rowcache import GEN, TRUNCATED

if TYPE_CHECKING:
    import pyarrow as pa

_REQUEST_FIELDS = ("logprobs", "top_logprobs")


@dataclass(frozen=True)
class Job:
    row_id: str
    out_id: str
    candidate: int
    profile: str | None
    request: TeacherRequest
    key: str


def generate_recipe(node: GraphNode, identity: TeacherIdentity) -> dict[str, Any]:
    spec = node.spec
    teacher = node.target.spec.teachers[spec.teacher]
    return {
        "kind": "generate",
        "teacher": identity.key_parts(),
        "system": spec.system,
        "template": spec.template,
        "decode": spec.decode.model_dump(exclude_none=True),
        "profiles": {k: v.model_dump(exclude_none=True) for k, v in (spec.profiles or {}).items()}
        or None,
        "n": spec.n,
        "format": spec.format,
        "think": getattr(teacher, "think", None),
        "parse": spec.parse,
        "parse_options": spec.parse_options or None,
        "parse_version": keyed_version(node.parser) if node.parser else None,
        "on_truncation": spec.on_truncation,
    } | ({"messages": [m.model_dump() for m in spec.messages]} if spec.messages else {})


def _profiles(recipe: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    base = recipe["decode"]
    if not recipe["profiles"]:
        return [(None, base)]
    return [(name, {**base, **opts}) for name, opts in recipe["profiles"].items()]


def make_request(
    messages: tuple[dict[str, str], ...], decode: dict[str, Any], k: int, fmt: Any, think: Any
) -> TeacherRequest:
    options = {key: v for key, v in decode.items() if key not in _REQUEST_FIELDS}
    options["seed"] = int(options.get("seed", 0)) + k
    return TeacherRequest(
        messages=messages,
        options=options,
        format=fmt,
        think=think,
        logprobs=bool(decode.get("logprobs")),
        top_logprobs=decode.get("top_logprobs"),
    )


def generation_key(identity: dict[str, Any], request: TeacherRequest, k: int) -> str:
    """Exactly what is sent, plus the candidate index. A profile's *name* is not keyed (it is
    never sent): its options are."""
    return content_hash(
        {
            "type": "generation",
            "teacher": identity,
            "messages": list(request.messages),
            "options": request.options,
            "format": request.format,
            "think": request.think,
            "logprobs": request.logprobs,
            "top_logprobs": request.top_logprobs,
            "candidate": k,
        }
    )


def messages_for(system: str | None, prompt: str) -> tuple[dict[str, str], ...]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": prompt})
    return tuple(msgs)


class GenerateRunner:
    def __init__(
        self, build: Any, node: GraphNode, recipe: dict[str, Any], stats: NodeStats
    ) -> None:
        self.b = build
        self.node = node
        self.recipe = recipe
        self.stats = stats
        spec = node.spec
        self.conversation = [(m.role, parse_template(m.content)) for m in spec.messages or []]
        self.template = (
            None if self.conversation else node.template or parse_template(spec.template)
        )
        self.system_tpl = parse_template(spec.system) if spec.system else None
        self.profiles = _profiles(recipe)
        self.failures: list[Failure] = []
        self.teacher_id = build.teachers.teacher_id(node.target, node.spec.teacher)
        self._record_bytes = 0  # of the replies cached so far (for a disk-full estimate)
        self._ready: list[tuple[dict[str, Any], Job, dict[str, Any]]] = []
        self._flushed = time.perf_counter()
        self._asking: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        """Keys being asked now: a second row with the same request waits for the reply."""

    def render(self, row: dict[str, Any]) -> tuple[dict[str, str], ...]:
        """The messages sent for ``row``: the conversation's turns, or [system?, user]."""
        if self.conversation:
            return tuple({"role": role, "content": t.render(row)} for role, t in self.conversation)
        assert self.template is not None
        system = self.system_tpl.render(row) if self.system_tpl else None
        return messages_for(system, self.template.render(row))

    def jobs(self, row: dict[str, Any]) -> Iterator[Job]:
        messages = self.render(row)
        rid = row[C.ID]
        for profile, decode in self.profiles:
            for k in range(self.recipe["n"]):
                req = make_request(messages, decode, k, self.recipe["format"], self.recipe["think"])
                key = generation_key(self.recipe["teacher"], req, k)
                out_id = f"{rid}/{profile}/{k}" if profile else f"{rid}/{k}"
                yield Job(rid, out_id, k, profile, req, key)

    @property
    def keeps_truncated(self) -> bool:
        return self.recipe["on_truncation"] == "keep"

    def cached(self, key: str) -> bool:
        return self.b.cache.has(GEN, key) or (
            self.keeps_truncated and self.b.cache.has(TRUNCATED, key)
        )

    def lookup(self, key: str) -> dict[str, Any] | None:
        record = self.b.cache.get(GEN, key)
        if record is None and self.keeps_truncated:
            record = self.b.cache.get(TRUNCATED, key)
        return record

    # the pass ------------------------------------------------------------------
    async def run(self, source: Input, sink: Sink) -> int:
        """Ask for every generation not in the cache and write every row, in input order,
        as soon as the rows before it are written. Returns how many generations are
        missing (dry run: the output is then unknown)."""
        b, stats = self.b, self.stats
        missing: list[str] = []
        asks = not (b.options.dry_run or b.options.offline)
        progress = b.progress_for(self.node)
        expected = source.expected_rows()
        progress.total = (expected or 0) * self.recipe["n"] * len(self.profiles)
        b.reporter.progress(progress)  # unthrottled: a live display follows this object from now
        sink.open(self.schema(await source.schema()))

        async def produce(submit: Any, ready: Any) -> None:
            async for batch in source.chunks():
                for row in batch:
                    stats.rows_in += 1
                    if expected is None or stats.rows_in > expected:
                        progress.total += self.recipe["n"] * len(self.profiles)
                    for job in self.jobs(row):
                        record = self.lookup(job.key)
                        if record is not None:
                            stats.cached += 1
                            progress.cached += 1
                            await ready((row, job, record))
                        elif asks:
                            await submit((row, job))
                        else:
                            missing.append(job.out_id)
                    b.report(progress)

        async def consume(item: tuple[dict[str, Any], Job, dict[str, Any] | None]) -> None:
            row, job, record = item
            if record is None:  # failed: recorded
                return
            where = check_record(record)
            if where is not None:  # cached by an older fdbuild: never written out
                self._drop_invalid(job, record, where)
                return
            self._ready.append((row, job, record))
            if len(self._ready) >= CHUNK_ROWS:
                await self._flush(sink)

        # twice what the teacher takes: a worker always waits for the next free slot, so
        # none idles while another stores the reply it just got
        workers = 2 * teacher_capacity(b, self.node.target, self.node.spec.teacher)
        work = OrderedWork(self._ask, workers=workers, window=max(4 * workers, 2 * CHUNK_ROWS))

        async def idle() -> None:  # the next reply is not in: pass on what is, when due
            if sink.stream is not None and due(len(self._ready), self._flushed):
                await self._flush(sink, final=True)

        await work.run(produce, consume, idle)
        await self._flush(sink, final=True)
        if b.options.offline and missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise OfflineMiss(
                f"--offline: node '{self.node.ref}' has {len(missing)} generation(s) "
                f"not in the cache: {shown}"
            )
        stats.extra["to_compute"] = len(missing)
        return len(missing)

    async def _flush(self, sink: Sink, final: bool = False) -> None:
        """Write the rows whose replies are in, parsing them as one batch (on the
        executor: a Ray cluster parses where the work is spread)."""
        ready, self._ready = self._ready, []
        self._flushed = time.perf_counter()
        parsed: list[dict[str, Any]] = []
        if self.node.parser is not None and ready:
            parsed = await self._parse_all([record["text"] for _, _, record in ready])
        for i, (row, job, record) in enumerate(ready):
            out = self._output_row(row, job, record)
            if parsed:
                out.update(parsed[i])
            sink.write(out)
        await sink.drain(final)

    async def _ask(
        self, item: tuple[dict[str, Any], Job]
    ) -> tuple[dict[str, Any], Job, dict[str, Any] | None]:
        row, job = item
        while job.key in self._asking:  # the same request for another row, in flight
            record = await asyncio.shield(self._asking[job.key])
            if record is not None:  # one call for both
                self.stats.cached += 1
                self.b.progress_for(self.node).cached += 1
                return row, job, record
            # it failed: this row asks itself, and records its own failure
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._asking[job.key] = future
        try:
            record = await self._run_job(job)
        except BaseException:
            future.cancel()
            raise
        finally:
            self._asking.pop(job.key, None)
        future.set_result(record)
        return row, job, record

    async def _run_job(self, job: Job) -> dict[str, Any] | None:
        """One generation: asked, cached the moment it returns, and returned (None: it
        failed, and the failure is recorded)."""
        b, stats, progress = self.b, self.stats, self.b.progress_for(self.node)
        progress.in_flight += 1
        b.report(progress)
        try:
            response, attempts, seconds = await b.teachers.call(
                self.node.target, self.node.spec.teacher, job.request
            )
        except TeacherCallError as exc:
            attempts = getattr(exc, "attempts", 1)
            stats.teacher_calls += attempts
            self._fail(job, exc.reason, exc.message, attempts)
            return None
        finally:
            progress.in_flight -= 1
        stats.teacher_calls += attempts
        stats.latencies_s.append(seconds)
        stats.prompt_tokens += response.prompt_tokens or 0
        stats.completion_tokens += response.completion_tokens or 0
        progress.tokens += response.completion_tokens or 0
        record = response.to_record()
        if response.done_reason == "length":
            if self.recipe["on_truncation"] == "fail":
                self._fail(job, "truncated", "done_reason=length: num_predict reached", attempts)
                return None
            if not self._put(TRUNCATED, job.key, record):
                return None
            stats.computed += 1
            progress.done += 1
            return record if self.keeps_truncated else None
        if job.request.logprobs and not response.logprobs:
            self._fail(job, "logprobs_missing", "the server returned no logprobs", attempts)
            return None
        if not self._put(GEN, job.key, record):
            return None
        stats.computed += 1
        progress.done += 1
        b.report(progress)
        return record

    def _put(self, space: str, key: str, record: dict[str, Any]) -> bool:
        """Cache one reply (False: its teacher changed meanwhile, nothing cached). A failed
        write names what the rest of the node still needs, estimated from the replies
        cached so far."""
        b, stats = self.b, self.stats

        def needed() -> int | None:
            size = len(pickle.dumps(record, protocol=5))
            done = stats.computed + 1
            average = (self._record_bytes + size) / done
            todo = b.progress_for(self.node)
            left = max(todo.total - todo.cached - todo.done - todo.failed, 1)
            return int(average * left)

        if not b.watch.put(self.teacher_id, space, key, record, needed):
            return False
        self._record_bytes += len(record.get("text") or "") + 200
        return True

    def _fail(self, job: Job, reason: str, detail: str, attempts: int) -> None:
        self.stats.failed += 1
        self.b.progress_for(self.node).failed += 1
        self.failures.append(Failure(str(self.node.ref), job.out_id, reason, detail, attempts))
        if reason != UNAVAILABLE:  # the pool said it once for the whole teacher
            self.b.reporter.row_failed(str(self.node.ref), job.out_id, f"{reason}: {detail}")

    # pass 2 ---------------------------------------------------------------------
    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        import pyarrow as pa

        added: dict[str, pa.DataType] = {
            C.ID: pa.string(),
            C.PARENT: pa.string(),
            C.CANDIDATE: pa.int64(),
        }
        if self.recipe["profiles"]:
            added[C.PROFILE] = pa.string()
        added.update(
            {
                C.SYSTEM: pa.string(),
                C.PROMPT: pa.string(),
                C.COMPLETION: pa.string(),
                C.DONE_REASON: pa.string(),
                C.key_col(self.node.ref.node): pa.string(),
            }
        )
        if self.conversation:
            turn = pa.struct([("role", pa.string()), ("content", pa.string())])
            added[C.MESSAGES] = pa.list_(turn)
        if self.node.parser is not None:
            added.update({k: arrow_type(t) for k, t in self.node.parser.outputs.items()})
            added[C.PARSE_ERROR] = pa.string()
        if C.LOGPROBS in self.node.columns:
            added[C.LOGPROBS] = logprobs_type()
        if C.THINKING in self.node.columns:
            added[C.THINKING] = pa.string()
        return extend_schema(input_schema, added)

    def _drop_invalid(self, job: Job, record: dict[str, Any], where: str) -> None:
        for space in (GEN, TRUNCATED):
            self.b.cache.delete(space, job.key)
        detail = describe_invalid(record, where) + "; dropped from the cache, asked again"
        self.stats.cached -= 1  # counted as a hit by pass 1
        self._fail(job, INVALID_TEXT, detail + " on the next build", 0)

    def _output_row(self, row: dict[str, Any], job: Job, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out[C.ID] = job.out_id
        out[C.PARENT] = job.row_id
        out[C.CANDIDATE] = job.candidate
        if self.recipe["profiles"]:
            out[C.PROFILE] = job.profile
        msgs = job.request.messages
        out[C.SYSTEM] = msgs[0]["content"] if msgs[0]["role"] == "system" else None
        out[C.PROMPT] = msgs[-1]["content"]  # a conversation's last user turn
        if self.conversation:
            out[C.MESSAGES] = [dict(m) for m in msgs]
        out[C.COMPLETION] = record["text"]
        out[C.DONE_REASON] = record.get("done_reason")
        out[C.key_col(self.node.ref.node)] = job.key
        if C.LOGPROBS in self.node.columns:
            out[C.LOGPROBS] = _plain_logprobs(record.get("logprobs"))
        if C.THINKING in self.node.columns:
            out[C.THINKING] = record.get("thinking")
        return out

    async def _parse_all(self, texts: list[str]) -> list[dict[str, Any]]:
        parser = self.node.parser
        assert parser is not None
        outcomes = await self.b.executor.parse(parser, texts)
        out = []
        for status, value in outcomes:
            if status == "ok":
                out.append({**{k: value.get(k) for k in parser.outputs}, C.PARSE_ERROR: None})
            else:
                out.append({**{k: None for k in parser.outputs}, C.PARSE_ERROR: value})
        return out


def _plain_logprobs(items: Any) -> list[dict[str, Any]] | None:
    if not items:
        return None
    out = []
    for item in items:
        tops = [
            {"token": t.get("token"), "logprob": t.get("logprob")}
            for t in item.get("top_logprobs") or []
        ]
        out.append(
            {"token": item.get("token"), "logprob": item.get("logprob"), "top_logprobs": tops}
        )
    return out


class GenerateKind(NodeKind):
    name = "generate"

    def streams(self, node: GraphNode) -> bool:
        return True

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return generate_recipe(node, await teacher_identity(build, node, node.spec.teacher))

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        """Pending when a dry run cannot know the rows."""
        runner = GenerateRunner(build, node, recipe, stats)
        stats.rows_in = 0
        t0 = time.perf_counter()
        missing = await runner.run(inputs[0], sink)
        stats.extra["teacher_wall_s"] = round(time.perf_counter() - t0, 3)
        return Outcome(runner.failures, pending=bool(build.options.dry_run and missing))
