"""Before and after a change to search: are the top 10 results the same?

    .venv/bin/python bench/same_results.py --save /tmp/top10-before.jsonl   # before the change
    .venv/bin/python bench/same_results.py --check /tmp/top10-before.jsonl  # after it

Runs the same queries as search_latency.py (2-4 consecutive words of a stored chunk's line),
in every mode and with each filter, against the cached 100k x 1,024 synthetic index (built by
search_latency.py; `--index DIR` names another one, `--data-dir` another copy of its data dir,
for code that needs the older ledger format). `--save` writes one JSON line per search: the
cell, the query, and the top 10 results' chunk ids, scores and line spans. `--check` runs them
again and reports, per cell, how many searches return the same ids in the same order, the same
ids in another order, and the mean overlap of the two top-10 lists; it exits 1 if any differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PrecomputedEmbedder, SyntheticIndex, default_cache, queries_from, search_without_embedding, settings_for
from search_latency import FILTERS, MODES, request_for

from indexer.chunk import encoding


def load_index(where: Path, data_dir: Path | None) -> SyntheticIndex:
    info = json.loads((where / "index.json").read_text())
    return SyntheticIndex(data_dir or where / "data", where / "claude", **info, reused=True)


def top10s(built: SyntheticIndex, queries: list[tuple[str, str]]) -> list[dict[str, object]]:
    settings = settings_for("http://127.0.0.1:9", built.claude_dir, built.data_dir, built.dims)
    embedder = PrecomputedEmbedder(built.dims)
    found: list[dict[str, object]] = []

    async def run() -> None:
        index = search_without_embedding(settings, embedder)
        for q, _ in queries:
            embedder.add(index.template.format_query(q))
        try:
            for i, (q, s) in enumerate(queries):
                for f in FILTERS:
                    for m in MODES:
                        response = await index.search(request_for(q, s, f, m, built))
                        found.append(
                            {
                                "query": i,
                                "text": q,
                                "filter": f,
                                "mode": m,
                                "ids": [h.chunk_id for h in response.results],
                                "scores": [h.score for h in response.results],
                                "lines": [[h.line_start, h.line_end] for h in response.results],
                            }
                        )
        finally:
            await index.aclose()

    anyio.run(run)
    return found


def compare(before: list[dict[str, object]], after: list[dict[str, object]]) -> int:
    cells: dict[tuple[str, str], list[tuple[bool, bool, float]]] = defaultdict(list)
    for old, new in zip(before, after, strict=True):
        a, b = list(old["ids"]), list(new["ids"])  # type: ignore[call-overload]
        overlap = len(set(a) & set(b)) / max(len(a), len(b)) if a or b else 1.0
        cells[(str(old["filter"]), str(old["mode"]))].append((a == b and old["lines"] == new["lines"], set(a) == set(b), overlap))
    print("| filter | mode | searches | same ids, order and lines | same ids | mean top-10 overlap |")
    print("|---|---|---|---|---|---|")
    differ = 0
    for (f, m), rows in cells.items():
        same = sum(r[0] for r in rows)
        differ += len(rows) - same
        print(f"| {f} | {m} | {len(rows)} | {same} | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows) / len(rows):.3f} |")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path)
    action.add_argument("--check", type=Path)
    parser.add_argument("--index", type=Path, help="a cached synthetic index dir (default: the 100k x 1,024 one)")
    parser.add_argument("--data-dir", type=Path, help="another copy of that index's data dir")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--after", type=Path, help="with --check: also save this run's results here")
    args = parser.parse_args(argv)
    where = args.index or next(iter(sorted(default_cache().glob("synthetic-n100000-d1024-s0-*"))), None)
    if where is None:
        parser.error("no cached 100k x 1,024 index: run bench/search_latency.py first, or pass --index")
    encoding()
    built = load_index(where, args.data_dir)
    found = top10s(built, queries_from(built.samples, args.queries))
    if args.after:
        args.after.write_text("".join(json.dumps(row) + "\n" for row in found))
    if args.save:
        args.save.write_text("".join(json.dumps(row) + "\n" for row in found))
        print(f"saved {len(found)} searches to {args.save}")
        return 0
    before = [json.loads(line) for line in args.check.read_text().splitlines()]
    return compare(before, found)


if __name__ == "__main__":
    sys.exit(main())
