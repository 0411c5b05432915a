"""The Ollama-protocol test server for the scale benchmarks (issue 11), with two additions
a benchmark needs and a test does not: an exact count of the generation requests that
survives a ``kill -9``, and a judge's replies.

    python benchmarks/_server.py --latency 0.1 --jitter 0.5 --seed 1 \\
        --model TAG=DIGEST [--judge] [--count-file PATH]

prints its URL on one line and serves until killed, like
``python -m tests.support.ollama_server`` (which it wraps: same HTTP, same protocol).

``--count-file PATH``: one byte is appended (``O_APPEND``, one ``write``) to ``PATH`` for
every generation request as it is received, before its latency is slept, and one to
``PATH.done`` when its reply has been sent; so the files' sizes are the requests the
server took and answered, exact even after it was killed mid-request (the bytes are in
the kernel's page cache, not in the dead process), and their difference is what it had
in flight when it died. ``/_fake/stats`` cannot say that about a server that no longer
answers.

``--judge``: replies are ``Score: N/10`` with N a pure function of the prompt, so the
``judge`` check parses every one (the default replies are prose, which it rejects).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.ollama_replies import Reply, default_responder  # noqa: E402
from tests.support.ollama_server import FakeOllama  # noqa: E402


def judge_responder(request: Mapping[str, Any]) -> Reply:
    digest = hashlib.sha256(repr(request["messages"]).encode()).digest()
    return Reply(text=f"The answer is plausible. Score: {1 + digest[0] % 10}/10")


class CountingFake(FakeOllama):
    """The test server, counting generation requests in two files (see the module doc)."""

    def __init__(self, *args: Any, count_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fds: tuple[int, int] | None = None
        if count_file is not None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC
            done = count_file.with_name(count_file.name + ".done")
            self._fds = (os.open(count_file, flags, 0o644), os.open(done, flags, 0o644))

    @contextmanager
    def _generation(self, body: dict[str, Any]) -> Iterator[str | None]:
        if self._fds is None:
            with super()._generation(body) as fault:
                yield fault
            return
        os.write(self._fds[0], b".")
        try:
            with super()._generation(body) as fault:
                yield fault
        finally:
            os.write(self._fds[1], b".")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/_server.py")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--model", action="append", required=True, help="TAG=DIGEST")
    p.add_argument("--version", default="0.32.15")
    p.add_argument("--judge", action="store_true")
    p.add_argument("--count-file", type=Path, default=None)
    args = p.parse_args(argv)
    models = dict(m.partition("=")[::2] for m in args.model)
    fake = CountingFake(
        models,
        count_file=args.count_file,
        responder=judge_responder if args.judge else default_responder,
        version=args.version,
        latency_s=args.latency,
        jitter=args.jitter,
        port=args.port,
        rng_seed=args.seed,
    )
    with fake:
        print(fake.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
