"""What verified reads cost (issue 9, item 1): the functions a build calls, timed alone.

- ``verify_artifact(path)``: one streaming xxh3_128 pass over the file's bytes (what a
  node pays before reading an input's rows), on a 270 MB file (page cache warm) and on a
  100k-row generate-like artifact;
- ``looks_intact(path)``: two stats and a small JSON read (what a memo hit pays; the
  no-op rebuild calls it once per non-export node);
- for scale: reading every row of the same artifact, the legacy check (rows digest), and
  the row-cache record checksum (``records.intact`` / ``decode``) per record.

    python benchmarks/bench_verify.py            # 270 MB + 100k rows
    python benchmarks/bench_verify.py --mb 50    # a smaller file
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fdbuild.keys import file_digest  # noqa: E402
from fdbuild.store.objects import ArtifactStore  # noqa: E402
from fdbuild.store.records import decode, encode, intact  # noqa: E402
from fdbuild.store.verify import (  # noqa: E402
    looks_intact,
    rows_digest,
    verify_artifact,
    write_sidecar,
)


def best(fn: Callable[[], object], repeats: int = 5) -> tuple[float, float]:
    """(best, median) wall seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def big_file(folder: Path, mb: int) -> Path:
    path = folder / "ab" / ("ab" + "0" * 30 + ".parquet")
    path.parent.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for _ in range(mb):
            fh.write(chunk)
    write_sidecar(path, file_digest(path), path.stat().st_size, 0)
    return path


def artifact(folder: Path, rows: int) -> Path:
    import pyarrow as pa

    schema = pa.schema(
        [(c, pa.string()) for c in ("_id", "_parent", "question", "_completion", "_key_g")]
        + [("_candidate", pa.int64())]
    )
    store = ArtifactStore(folder / "objects")
    writer = store.writer(schema)
    for i in range(rows):
        writer.write(
            {
                "_id": f"t{i:07d}/0",
                "_parent": f"t{i:07d}",
                "question": f"What is {i} plus {i}? Show the steps briefly.",
                "_completion": f"The answer is {2 * i}. " * 6,
                "_key_g": f"x3:{i:032x}",
                "_candidate": 0,
            }
        )
    digest, _ = writer.finish()
    return store.path(digest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=270)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fdbuild-bench-verify-") as tmp:
        folder = Path(tmp)
        big = big_file(folder / "big", args.mb)
        verify_artifact(big)  # warm the page cache
        b, m = best(lambda: verify_artifact(big))
        print(f"verify_artifact, {args.mb} MB file: best {b * 1e3:.1f} ms, median {m * 1e3:.1f} ms")
        big.unlink()

        path = artifact(folder, args.rows)
        size_mb = path.stat().st_size / 1e6
        b, m = best(lambda: verify_artifact(path))
        print(
            f"verify_artifact, {args.rows} rows ({size_mb:.1f} MB): "
            f"best {b * 1e3:.2f} ms, median {m * 1e3:.2f} ms"
        )
        b, m = best(lambda: looks_intact(path), repeats=200)
        print(f"looks_intact (memo hit, per node): best {b * 1e6:.0f} us, median {m * 1e6:.0f} us")

        import pyarrow.parquet as pq

        def read_all() -> None:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
                batch.to_pylist()

        b, _ = best(read_all, repeats=3)
        print(f"for scale: reading every row of it: {b * 1e3:.0f} ms")
        b, _ = best(lambda: rows_digest(path), repeats=3)
        print(f"legacy check (rows digest, once per legacy artifact): {b * 1e3:.0f} ms")

        record = {
            "text": "SELECT name FROM t WHERE id = 3 " * 8,
            "done_reason": "stop",
            "prompt_tokens": 40,
            "completion_tokens": 60,
        }
        value = encode("g:x3:" + "0" * 32, record)
        n = 100_000
        t0 = time.perf_counter()
        for _ in range(n):
            intact("g:x3:" + "0" * 32, value)
        t_intact = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for _ in range(n):
            decode("g:x3:" + "0" * 32, value)
        t_decode = (time.perf_counter() - t0) / n
        print(
            f"record checksum ({len(value)} B): intact {t_intact * 1e6:.2f} us, "
            f"decode (check + unpickle) {t_decode * 1e6:.2f} us per record"
        )
        cache_costs(folder / "cache", 20_000, record)
    return 0


def cache_costs(folder: Path, n: int, record: dict[str, object]) -> None:
    """has/get of n records through RowCache (checked) against diskcache alone."""
    from fdbuild.store.rowcache import GEN, RowCache

    cache = RowCache(folder)
    keys = [f"x3:{i:032x}" for i in range(n)]
    with cache.batch():
        for k in keys:
            cache.put(GEN, k, record)
    raw = cache._cache
    timings = {
        "diskcache `in` (before: has)": lambda: [GEN + k in raw for k in keys],
        "RowCache.has (fetch + checksum)": lambda: [cache.has(GEN, k) for k in keys],
        "diskcache get of the bytes": lambda: [raw.get(GEN + k) for k in keys],
        "RowCache.get (fetch + checksum + unpickle)": lambda: [cache.get(GEN, k) for k in keys],
    }
    for label, fn in timings.items():
        b, _ = best(fn, repeats=3)
        print(f"{n} x {label}: {b * 1e3:.0f} ms ({b / n * 1e6:.1f} us each)")
    cache.close()


if __name__ == "__main__":
    raise SystemExit(main())
