"""What the shared searcher adds to a search: the same hybrid searches in this process and through
the searcher (a Unix socket to another process running the same SessionSearch), alternating.

    .venv/bin/python bench/searcher_hop.py                 # 100k x 1,024 (the index search_latency.py keeps)
    .venv/bin/python bench/searcher_hop.py --chunks 2000   # quick, nothing cached

Both sides embed the query through the stand-in (FastStandIn in its own process, no delay), so the
difference between the two columns is the hop: the request and the answer as JSON over the
socket, and pydantic on both sides. Each query runs on both sides in alternating order; p50 and
p95 over all queries, and the median of the per-query differences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio
from common import (
    default_cache,
    log,
    machine_header,
    queries_from,
    settings_for,
    standin_process,
    synthetic_index,
    table,
)

from indexer.models import SearchRequest
from indexer.searcher_client import SearcherClient
from indexer.service import SessionSearch


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, data: Path, claude: Path, dims: int, queries: list[str]) -> dict[str, list[float]]:
    settings = settings_for(url, claude, data, dims, SESSION_SEARCH_SEARCHER_IDLE_S="5")
    here, there = SessionSearch(settings), SessionSearch(settings)
    there.searcher = SearcherClient(settings)
    spent: dict[str, list[float]] = {"in this process": [], "through the searcher": []}
    try:
        for warm in queries[:5]:  # load the index on both sides
            await here.search(SearchRequest(query=warm))
            await there.search(SearchRequest(query=warm))
        for i, query in enumerate(queries):
            sides = [("in this process", here), ("through the searcher", there)]
            for name, index in sides if i % 2 else sides[::-1]:
                started = time.perf_counter()
                await index.search(SearchRequest(query=query))
                spent[name].append((time.perf_counter() - started) * 1e3)
    finally:
        await here.aclose()
        await there.aclose()
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args(argv)
    print(
        machine_header(
            "Search through the shared searcher against in process", ["bench/searcher_hop.py", *(argv or sys.argv[1:])]
        )
    )
    with tempfile.TemporaryDirectory(prefix="bench-hop-") as tmp, standin_process(0.0) as url:
        built = synthetic_index(
            Path(tmp) / "synthetic", args.chunks, args.dims, cache=args.cache if args.chunks >= 10_000 else None
        )
        queries = [q for q, _ in queries_from(built.samples, args.queries + 5)]
        log(f"{len(queries)} hybrid searches on each side")
        spent = anyio.run(measure, url, built.data_dir, built.claude_dir, args.dims, queries)
    rows = [[name, f"{percentile(v, 0.5):.1f}", f"{percentile(v, 0.95):.1f}"] for name, v in spent.items()]
    hop = [b - a for a, b in zip(spent["in this process"], spent["through the searcher"], strict=True)]
    print(
        f"Hybrid search, {built.chunks:,} chunks x {args.dims} dims, {len(hop)} queries, query embedded through the stand-in (ms):\n"
    )
    print(table(["side", "p50", "p95"], rows))
    print(f"\nMedian per-query difference (the hop): {percentile(hop, 0.5):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
