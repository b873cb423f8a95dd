"""The floor of a search filtered to a mid-size subset: every way Chroma offers to find the nearest
chunks of a subset, timed alone, beside an unfiltered nearest-100 search.

    .venv/bin/python bench/filter_floor.py                 # the cached 100k x 1,024 synthetic index
    .venv/bin/python bench/filter_floor.py --size 300000:1024

The subsets are search_latency.py's: one project (about 2% of the chunks) and a month (about
10%), their ids resolved in the ledger as a search resolves them. For each, over the same query
vectors (stored vectors, slightly perturbed, so every query has real neighbours):
  - by ids: `VectorCollection.query(vector, 100, ids=...)`, what a filtered search sends today;
  - exact: the subset's vectors read back from Chroma (`get`, embeddings) and scored with numpy;
  - post-filtered: an unfiltered search wide enough to hold 100 of the subset (1.5x the expected
    need), then filtered; unfiltered searches of several widths are timed too.
Each line also gives how many of the exact top 100 the by-ids search returned. Whatever a
filtered search does on top (FTS5, fusion, snippets) comes after one of these.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TARGET_PROJECT, default_cache, log, machine_header, median, settings_for, synthetic_index, table

from indexer.ledger_docs import docs_filter
from indexer.models import SearchRequest
from indexer.search import matching_projects
from indexer.service import SessionSearch

WANTED = 100
WIDTHS = (100, 1000, 2000, 5000, 8000)


def timed(call: Callable[[], Any], runs: list[float]) -> Any:
    started = time.perf_counter()
    result = call()
    runs.append((time.perf_counter() - started) * 1e3)
    return result


def subset_rows(label: str, collection: Any, vectors: list[list[float]], ids: list[str], n: int) -> list[list[object]]:
    """By ids, exact and post-filtered searches of one subset, with how much of the exact top the first found."""
    by_ids: list[float] = []
    exact: list[float] = []
    post: list[float] = []
    found: list[int] = []
    width = min(n, math.ceil(WANTED * 1.5 * n / max(1, len(ids))))
    kept = set(ids)
    for v in vectors:
        approximate = timed(lambda v=v: collection.query(v, WANTED, ids=ids), by_ids)
        best = timed(lambda v=v: sorted(collection.distances(v, ids), key=lambda p: p[1])[:WANTED], exact)
        timed(lambda v=v: [p for p in collection.query(v, width) if p[0] in kept][:WANTED], post)
        found.append(len({i for i, _ in approximate} & {i for i, _ in best}))
    share = f"{len(ids):,} ({len(ids) / n:.1%})"
    return [
        [f"{label}: by ids", share, f"{median(by_ids):.1f}", f"{median(found):.0f} of {WANTED}"],
        [f"{label}: exact, vectors read from Chroma", share, f"{median(exact):.1f}", f"{WANTED} of {WANTED}"],
        [f"{label}: post-filtered nearest {width:,}", share, f"{median(post):.1f}", ""],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100000:1024", help="N:DIMS of the cached synthetic index (default %(default)s)")
    parser.add_argument("--queries", type=int, default=15, help="query vectors per cell (default %(default)s)")
    args = parser.parse_args(argv)
    n, dims = (int(x) for x in args.size.split(":"))
    print(machine_header("The floor of a mid-size filtered search", ["bench/filter_floor.py", *(argv or sys.argv[1:])]))
    built = synthetic_index(Path("/nonexistent"), n, dims, cache=default_cache())
    index = SessionSearch(settings_for("http://127.0.0.1:9", built.claude_dir, built.data_dir, built.dims))
    served = index.catalog.serving()
    name, ledger, collection = served.record.name, index.resources.ledger, served.collection
    project = TARGET_PROJECT.rsplit("/", 1)[1]
    subsets = {
        "project": ledger.matching_ids(
            name, docs_filter(SearchRequest(query="x", project=project), matching_projects(project, ledger.projects(name))), n
        ),
        "since": ledger.matching_ids(name, docs_filter(SearchRequest(query="x", since=built.since), None), n),
    }
    rng = random.Random(0)
    probes = rng.sample(subsets["since"] or [], args.queries)
    stored = collection._collection.get(ids=probes, include=["embeddings"])["embeddings"]
    vectors = [[float(x) + rng.gauss(0, 0.01) for x in v] for v in stored]
    log(f"{len(vectors)} query vectors over {n:,} x {dims}")

    rows: list[list[object]] = []
    for width in WIDTHS:
        runs: list[float] = []
        for v in vectors:
            timed(lambda v=v, w=width: collection.query(v, w), runs)
        rows.append([f"unfiltered, nearest {width:,}", "", f"{median(runs):.1f}", ""])
    for label, ids in subsets.items():
        rows += subset_rows(label, collection, vectors, ids or [], n)
    print(f"Median ms of {len(vectors)} searches each, {n:,} x {dims}:\n")
    print(table(["search", "subset", "ms", "exact top 100 found"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
