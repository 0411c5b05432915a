"""The bare-client baseline of the scale benchmarks: the official ``ollama.AsyncClient``
alone, no engine, no cache, no files.

    python benchmarks/_bare_client.py --requests 20000 --concurrency 8 URL [URL ...]

One client per URL, ``concurrency`` workers per URL, each taking the next of
``requests`` distinct chats (prompts like the benchmarks' source rows) from one shared
queue as soon as its previous one is answered: the most any program that talks to these
servers through this client can reach. Prints one JSON object: wall seconds and CPU
seconds (``time.process_time``) of the request loop alone, imports excluded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MODEL  # noqa: E402


async def run(urls: list[str], requests: int, concurrency: int, offset: int) -> dict[str, float]:
    import ollama

    clients = [ollama.AsyncClient(host=u, timeout=60) for u in urls]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(offset, offset + requests):
        queue.put_nowait(i)

    async def worker(client: ollama.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await client.chat(
                model=MODEL,
                stream=False,
                options={"temperature": 0.2, "top_p": 0.95, "seed": 7, "num_predict": 128},
                messages=[
                    {"role": "system", "content": "You write SQLite SQL. Return SQL only."},
                    {
                        "role": "user",
                        "content": f"Question: What is the name of the country listed in row {i}?\nSQL:",
                    },
                ],
            )

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    for c in clients:
        await c._client.aclose()
    return {"loop_wall_s": wall, "loop_cpu_s": cpu}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("urls", nargs="+")
    args = p.parse_args()
    import ollama  # noqa: F401  (imported before the clock starts)

    out = asyncio.run(run(args.urls, args.requests, args.concurrency, args.offset))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
