"""The recall hook's relevance and speed, per similarity threshold.

Indexes the shared transcripts with all-MiniLM-L6-v2 (served by the stand-in, as in
bench/quality.py), then asks recall's own search (indexer.recall) for every evaluation
question and for UNRELATED, coding prompts that have nothing to do with the transcripts:

- precision: of the prompts given context, the share whose quoted exchanges include one
  that answers it (unrelated prompts given context count as wrong);
- recall: of the evaluation questions, the share given an exchange that answers it;
- quiet: of the unrelated prompts, the share given nothing.

Then times `session-search hook UserPromptSubmit` as a subprocess (p50, p95).

    PYTHONPATH=$PWD /work/main/.venv-bench/bin/python bench/recall.py [--hashing] [--timed 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from support.ollama_standin import MINILM, OllamaStandIn, minilm_backend  # noqa: E402
from quality import DEFAULT_FIXTURES, DEFAULT_QUERIES, Span, build_settings, covers, load_queries  # noqa: E402

from indexer.recall import MAX_EXCHANGES, recall_request  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
UNRELATED = [
    "write a python function that merges two sorted lists",
    "add a dark mode toggle to the settings page using css variables",
    "why is my rust borrow checker complaining about a mutable reference in this loop",
    "set up a github actions workflow that runs pytest on python 3.12",
    "convert this callback based node code to async await",
    "explain the difference between a left join and an inner join in postgres",
    "create a dockerfile for a flask app with gunicorn",
    "refactor this java class to use the builder pattern",
    "how do I debounce a search input in react",
    "write unit tests for the date parsing helper in utils.ts",
    "the kubernetes pod keeps crashing with OOMKilled, how do I raise the memory limit",
    "implement binary search over a rotated sorted array in go",
    "add pagination to the REST endpoint that lists invoices",
    "what is the time complexity of heapify",
    "rename the variable userData to profile across the whole module",
    "set up eslint and prettier for a typescript monorepo",
    "write a bash script that backs up a postgres database every night",
    "parse a csv file with pandas and drop rows with missing prices",
    "make the navbar sticky on mobile safari",
    "generate a migration that adds an index on orders.created_at",
]


async def rankings(index: SessionSearch, prompts: list[str]) -> list[list[tuple[float, Span]]]:
    """Recall's candidate hits per prompt: (cosine, span), best first."""
    found = []
    for prompt in prompts:
        request = recall_request(prompt)
        hits = (await index.search(request)).results if request else []
        found.append([(h.score, Span(h.source_path, h.line_start, h.line_end)) for h in hits])
    return found


def quality(questions, answered, unrelated) -> list[dict[str, float]]:
    rows = []
    for threshold in THRESHOLDS:
        given = right = quiet = 0
        for query, hits in zip(questions, answered, strict=True):
            shown = [span for score, span in hits if score >= threshold][:MAX_EXCHANGES]
            given += bool(shown)
            right += any(covers(span, t) for span in shown for t in query.relevant)
        for hits in unrelated:
            shown = [span for score, span in hits if score >= threshold][:MAX_EXCHANGES]
            given += bool(shown)
            quiet += not shown
        rows.append({"threshold": threshold, "precision": round(right / given, 3) if given else 1.0, "recall": round(right / len(questions), 3),
                     "quiet": round(quiet / len(unrelated), 3), "given": given})
    return rows


def timed(settings, prompts: list[str], runs: int) -> tuple[float, float]:
    env = {**os.environ, "OLLAMA_HOST": settings.ollama_host, "SESSION_SEARCH_CLAUDE_DIR": str(settings.claude_dir),
           "SESSION_SEARCH_DATA_DIR": str(settings.data_dir), "SESSION_SEARCH_MODEL": MINILM, "SESSION_SEARCH_RECALL": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "import sys; from indexer.cli import main; sys.exit(main())", "hook", "UserPromptSubmit"]
    seconds = []
    for i in range(runs):
        payload = json.dumps({"session_id": "none", "prompt": prompts[i % len(prompts)], "hook_event_name": "UserPromptSubmit"})
        started = time.monotonic()
        subprocess.run(command, input=payload, capture_output=True, text=True, env=env, timeout=60, check=True)
        seconds.append(time.monotonic() - started)
    seconds.sort()
    return statistics.median(seconds), seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hashing", action="store_true", help="the stand-in's lexical vectors instead of MiniLM")
    parser.add_argument("--timed", type=int, default=30, help="hook runs to time")
    args = parser.parse_args()
    questions = load_queries(DEFAULT_QUERIES)
    real = {} if args.hashing else {MINILM: minilm_backend()}
    with OllamaStandIn(real_models=real) as standin, tempfile.TemporaryDirectory(prefix="ss-recall-") as tmp:
        settings = build_settings(standin.url, DEFAULT_FIXTURES, Path(tmp))

        async def run():
            index = SessionSearch(settings)
            try:
                await index.reindex()
                return await rankings(index, [q.query for q in questions]), await rankings(index, UNRELATED)
            finally:
                await index.aclose()

        answered, unrelated = asyncio.run(run())
        for row in quality(questions, answered, unrelated):
            print(json.dumps(row))
        p50, p95 = timed(settings, [q.query for q in questions] + UNRELATED, args.timed)
        print(json.dumps({"hook_p50_s": round(p50, 3), "hook_p95_s": round(p95, 3), "runs": args.timed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
