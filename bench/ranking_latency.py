"""Search latency of this ranking against an older one, side by side in one run, on the synthetic
index of bench/search_latency.py (same cache, same queries, query embedding excluded).

    .venv/bin/python bench/ranking_latency.py                  # 100k x 1,024, 200 queries, against c1c1a4b
    .venv/bin/python bench/ranking_latency.py --ref main --size 10000:1024

The old ranking is the `indexer/search.py` of REF (fusion, collapsing, snippets), loaded beside
the current one; SessionSearch is the same, so only the ranking and shaping differ. Each query
runs both versions in every mode, alternating which goes first. The reranker is off.

    .venv/bin/python bench/ranking_latency.py --ref 9d33fe9 --whole-query
    .venv/bin/python bench/ranking_latency.py --ref d53164e --whole-query --joined   # queries like `spotter-gqc`

With --whole-query the old side is REF's whole search path: its `query.py` (the order of the
steps, what runs beside what), `retrieve.py` and `search.py`, loaded beside this tree's over the
same SessionSearch, ledger and Chroma client; it also counts the queries whose result lists are
the same in both. The ledger's and the store's code is this tree's on both sides.
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
    joined_queries_from,
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


def old_query(ref: str, where: Path) -> ModuleType:
    """REF's query.py, retrieve.py and search.py as old_query, old_retrieve and old_search, each
    importing the others."""
    names = ("search", "retrieve", "query")
    for name in names:
        source = subprocess.check_output(["git", "show", f"{ref}:indexer/{name}.py"], cwd=ROOT).decode()
        for other in names:
            source = source.replace(f"from indexer.{other} import", f"from old_{other} import")
        (where / f"old_{name}.py").write_text(source)
    sys.path.insert(0, str(where))
    return importlib.import_module("old_query")


class SwapQuery:
    """Makes SessionSearch run REF's whole search path while inside."""

    def __init__(self, old: ModuleType, index: Any):
        self.index, self.old_query, self.saved = index, old.Query(index.resources, index.catalog), None

    def __enter__(self) -> None:
        self.saved, self.index._query = self.index._query, self.old_query

    def __exit__(self, *exc: object) -> None:
        self.index._query = self.saved


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
    parser.add_argument("--whole-query", action="store_true", help="the old side is REF's query.py, retrieve.py and search.py")
    parser.add_argument("--joined", action="store_true", help="queries of words joined by hyphens (`spotter-gqc`) instead")
    args = parser.parse_args(argv)
    n, dims = (int(x) for x in args.size.split(":"))
    print(machine_header("Ranking latency, old against new", ["bench/ranking_latency.py", *(argv or sys.argv[1:])]))
    with tempfile.TemporaryDirectory(prefix="bench-ranking-") as tmp:
        old = old_query(args.ref, Path(tmp)) if args.whole_query else old_ranking(args.ref, Path(tmp))
        built = synthetic_index(
            Path(tmp) / "index", n, dims, corpus=Corpus.from_fixtures(), cache=default_cache() if n >= 10_000 else None
        )
        queries = (joined_queries_from if args.joined else queries_from)(built.samples, args.queries)
        settings = settings_for("http://127.0.0.1:9", built.claude_dir, built.data_dir, built.dims)
        embedder = PrecomputedEmbedder(built.dims)
        times: dict[tuple[str, str], list[float]] = defaultdict(list)
        same: dict[str, int] = defaultdict(int)
        holding: dict[tuple[str, str], int] = defaultdict(int)  # --joined: results whose snippet shows the joined word

        async def run() -> None:
            index = search_without_embedding(settings, embedder)
            for q, _ in queries:
                embedder.add(index.template.format_query(q))
            try:
                versions = [("old", SwapQuery(old, index) if args.whole_query else Swap(old)), ("new", None)]
                for i, (q, s) in enumerate(queries):
                    found: dict[tuple[str, str], list[str]] = {}
                    for label, swap in versions if i % 2 == 0 else versions[::-1]:
                        for mode in MODES:
                            request = request_for(q, s, "none", mode, built)
                            if swap is not None:
                                swap.__enter__()
                            try:
                                started = time.perf_counter()
                                response = await index.search(request)
                                if i >= 10:  # warm-up
                                    times[(label, mode)].append((time.perf_counter() - started) * 1e3)
                                found[(label, mode)] = [h.chunk_id for h in response.results]
                                joined = q.split()[0].lower()
                                holding[(label, mode)] += sum(joined in h.snippet.lower() for h in response.results)
                            finally:
                                if swap is not None:
                                    swap.__exit__()
                    for mode in MODES:
                        same[mode] += found[("old", mode)] == found[("new", mode)]
            finally:
                await index.aclose()

        log(f"timing {len(queries)} queries x {len(MODES)} modes x 2 versions at {n:,} x {dims}")
        anyio.run(run)
    rows = []
    for mode in MODES:
        o, w = times[("old", mode)], times[("new", mode)]
        rows.append(
            [
                mode,
                f"{median(o):.1f}",
                f"{p95(o):.1f}",
                f"{median(w):.1f}",
                f"{p95(w):.1f}",
                f"{median(w) / median(o):.2f}",
                f"{same[mode]} of {len(queries)}",
            ]
            + ([f"{holding[('old', mode)]} / {holding[('new', mode)]}"] if args.joined else [])
        )
    what = "query.py, retrieve.py and search.py" if args.whole_query else "indexer/search.py"
    print(f"{len(queries) - 10} queries after 10 warm-up, no filter, top_k 10, milliseconds; old = {what} of {args.ref}.\n")
    head = ["mode", "old p50", "old p95", "new p50", "new p95", "new/old p50", "same results"]
    print(table(head + (["results showing the joined word, old / new"] if args.joined else []), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
