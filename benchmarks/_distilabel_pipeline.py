"""bench_pipeline.py's distilabel side: the same generate-then-judge pipeline in
distilabel 1.5.3, run by distilabel's own Python (its own virtualenv, never fdbuild's):

    /work/bench/distilabel-venv/bin/python benchmarks/_distilabel_pipeline.py \\
        --rows 800 --gen-host URL --judge-host URL --batch 8 --cache-dir DIR

``LoadDataFromDicts`` (the same questions as fdbuild's source) >> ``TextGeneration`` on the
generation server (``OllamaLLM``) >> ``TextGeneration`` with a judging template on the
judge server. ``input_batch_size`` 8: distilabel sends a batch's requests at once
(``asyncio.gather``) and the next batch when it is done, so 8 is fdbuild's
``concurrency: 8``; its default (50) would put 50 requests in flight. No cache
(``use_cache=False``). Prints one JSON object: wall seconds from ``pipeline.run`` to its
return, rows out, rows with a judgement.

Standard library and distilabel only: nothing of fdbuild is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

COLUMNS = ("name", "capital", "population", "area", "continent", "currency", "language")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--gen-host", required=True)
    p.add_argument("--judge-host", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--cache-dir", required=True)
    args = p.parse_args()
    os.environ["DISTILABEL_CACHE_DIR"] = args.cache_dir

    t_import = time.perf_counter()
    from distilabel.models.llms import OllamaLLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    import_s = time.perf_counter() - t_import
    data = [
        {
            "task_id": f"q{i:07d}",
            "instruction": f"Question: What is the {COLUMNS[i % 7]} of the country listed in row {i} "
            f"of table t{i % 997}?\nSQL:",
        }
        for i in range(args.rows)
    ]
    t0 = time.perf_counter()
    with Pipeline(name="fdbuild-bench-generate-judge", cache_dir=args.cache_dir) as pipeline:
        load = LoadDataFromDicts(data=data, batch_size=args.batch)
        generate = TextGeneration(
            name="generate",
            llm=OllamaLLM(
                model=args.model,
                host=args.gen_host,
                timeout=60,
                generation_kwargs={
                    "options": {"temperature": 0.2, "top_p": 0.95, "seed": 7, "num_predict": 128}
                },
            ),
            system_prompt="You write SQLite SQL. Return SQL only.",
            input_batch_size=args.batch,
        )
        judge = TextGeneration(
            name="judge",
            llm=OllamaLLM(
                model=args.model,
                host=args.judge_host,
                timeout=60,
                generation_kwargs={"options": {"temperature": 0.0, "seed": 0}},
            ),
            template=(
                "Question: {{ instruction }}\nCandidate SQL: {{ generation }}\n"
                "How well does the candidate answer the question? Reply 'Score: N/10'."
            ),
            columns=["instruction", "generation"],
            output_mappings={"generation": "judgement"},
            input_batch_size=args.batch,
        )
        load >> generate >> judge
    distiset = pipeline.run(use_cache=False)
    wall = time.perf_counter() - t0
    rows = distiset["default"]["train"]
    judged = sum(1 for j in rows["judgement"] if j)
    print(json.dumps({"wall_s": wall, "import_s": import_s, "rows": len(rows), "judged": judged}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
