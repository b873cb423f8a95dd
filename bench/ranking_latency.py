"""Search latency of this ranking against an older one, side by side in one run, on the synthetic
index of bench/search_latency.py (same cache, same queries, query embedding excluded).

    .venv/bin/python bench/ranking_latency.py                  # 100k x 1,024, 200 queries, against c1c1a4b
    .venv/bin/python bench/ranking_latency.py --ref main --size 10000:1024

The old ranking is the `indexer/search.py` of REF (fusion, collapsing, snippets), loaded beside
the current one; SessionSearch is the same, so only the ranking and shaping differ. Each query
runs both versions in every mode, alternating which goes first. The reranker is off.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio
from common import (
    Corpus,
    PrecomputedEmbedder,
    default_cache,
    log,
    machine_header,
    median,
    p95,
    queries_from,
    search_without_embedding,
    settings_for,
    synthetic_index,
    table,
)
from search_latency import request_for

from indexer import query as service

MODES = ("hybrid", "vector", "keyword")
ROOT = Path(__file__).resolve().parent.parent


def old_ranking(ref: str, where: Path) -> ModuleType:
    source = subprocess.check_output(["git", "show", f"{ref}:indexer/search.py"], cwd=ROOT)
    path = where / "old_search.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("old_search", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_search"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class Swap:
    """Makes SessionSearch use the old ranking and snippets while inside."""

    def __init__(self, old: ModuleType):
        self.old = old
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        old = self.old
        for name in ("coordinated", "fuse_coordinated", "to_hit", "term_weights", "collapse", "single"):
            self.saved[name] = getattr(service, name)
        # The old fusion whole, after the search: coordination, where it had one, included.
        takes_query = len(inspect.signature(old.fuse).parameters) >= 3
        service.coordinated = lambda query, keyword: list(keyword)
        service.fuse_coordinated = lambda vector, keyword, query="": (
            old.fuse(vector, keyword, query) if takes_query else old.fuse(vector, keyword)
        )
        service.to_hit = lambda candidate, terms, query="", weights=None: old.to_hit(candidate, terms)
        service.term_weights = lambda terms, texts: None
        service.collapse, service.single = old.collapse, old.single

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            setattr(service, name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="c1c1a4b", help="the git revision whose ranking is 'old' (default %(default)s)")
    parser.add_argument("--size", default="100000:1024", help="N:DIMS (default %(default)s)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    n, dims = (int(x) for x in args.size.split(":"))
    print(machine_header("Ranking latency, old against new", ["bench/ranking_latency.py", *(argv or sys.argv[1:])]))
    with tempfile.TemporaryDirectory(prefix="bench-ranking-") as tmp:
        old = old_ranking(args.ref, Path(tmp))
        built = synthetic_index(
            Path(tmp) / "index", n, dims, corpus=Corpus.from_fixtures(), cache=default_cache() if n >= 10_000 else None
        )
        queries = queries_from(built.samples, args.queries)
        settings = settings_for("http://127.0.0.1:9", built.claude_dir, built.data_dir, built.dims)
        embedder = PrecomputedEmbedder(built.dims)
        times: dict[tuple[str, str], list[float]] = defaultdict(list)

        async def run() -> None:
            index = search_without_embedding(settings, embedder)
            for q, _ in queries:
                embedder.add(index.template.format_query(q))
            try:
                versions = [("old", Swap(old)), ("new", None)]
                for i, (q, s) in enumerate(queries):
                    for label, swap in versions if i % 2 == 0 else versions[::-1]:
                        for mode in MODES:
                            request = request_for(q, s, "none", mode, built)
                            if swap is not None:
                                swap.__enter__()
                            try:
                                started = time.perf_counter()
                                await index.search(request)
                                if i >= 10:  # warm-up
                                    times[(label, mode)].append((time.perf_counter() - started) * 1e3)
                            finally:
                                if swap is not None:
                                    swap.__exit__()
            finally:
                await index.aclose()

        log(f"timing {len(queries)} queries x {len(MODES)} modes x 2 versions at {n:,} x {dims}")
        anyio.run(run)
    rows = []
    for mode in MODES:
        o, w = times[("old", mode)], times[("new", mode)]
        rows.append(
            [mode, f"{median(o):.1f}", f"{p95(o):.1f}", f"{median(w):.1f}", f"{p95(w):.1f}", f"{median(w) / median(o):.2f}"]
        )
    print(
        f"{len(queries) - 10} queries after 10 warm-up, no filter, top_k 10, milliseconds; old = indexer/search.py of {args.ref}.\n"
    )
    print(table(["mode", "old p50", "old p95", "new p50", "new p95", "new/old p50"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
