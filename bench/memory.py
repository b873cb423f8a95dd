"""Memory: peak RSS of `session-search reindex` over >= 100 MB of JSONL, and RSS of an idle server.

    .venv/bin/python bench/memory.py            # 25 and 100 MB reindexes; a server over 100k chunks
    .venv/bin/python bench/memory.py --quick    # 1.5 and 3 MB; a server over 2k chunks

The 100k index is the one search_latency.py builds and keeps in $XDG_CACHE_HOME/session-search-bench;
if it is not there yet this run builds it (about 10 minutes here) and keeps it (`--no-cache`: not).

Peak RSS is the child's ru_maxrss (getrusage RUSAGE_CHILDREN in a small wrapper process: the
largest single process of its tree) and, since a big reindex writes Chroma from a process of its
own, the peak of the whole tree's summed RSS, sampled every 50 ms from /proc. The reindex runs the console script against the stand-in (FastStandIn, own
process, no delay) into an empty data dir, at the default 2,560 dimensions.

Chroma's share is estimated by a store-only child: the same chunks, in the same writes IndexRun
makes (embed batches of 32 filled across files), upserted with random vectors into an empty
embedded Chroma, nothing else (it reads one batch at a time from a file this script writes). A
third child only imports chromadb and opens the store. Target: reindex peak - store-only peak
<= 500 MB.

The idle server is `session-search serve` over a synthetic index (see search_latency.py) of 100k
chunks at 1,024 dims: RSS after the handshake, after the first search (which opens Chroma and
loads the HNSW index), and after 20 more searches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    MODEL,
    SESSION_SEARCH,
    McpPipe,
    build_home,
    child_env,
    default_cache,
    du,
    embed_batches,
    env_for,
    file_chunks,
    jsonl_bytes,
    log,
    machine_header,
    mb,
    product_cleaner,
    queries_from,
    settings_for,
    standin_process,
    synthetic_index,
    table,
    unique_ids,
)
from support.home import exchange, write_session

from indexer.config import Settings

TARGET_MB = 500
REPEATS = 5  # the last server's first query, asked again once warm
WRAPPER = """
import json, os, resource, subprocess, sys, time

def tree_rss_kb(root):
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
            except (OSError, IndexError):
                pass
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(pid, 0) for pid in tree)

started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
tree_peak = 0
import threading
out = {}
reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), child.communicate())))
reader.start()
while child.poll() is None:
    tree_peak = max(tree_peak, tree_rss_kb(child.pid))
    time.sleep(0.05)
reader.join()
print(json.dumps({"rc": child.returncode, "wall": time.perf_counter() - started,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "tree_peak_kb": tree_peak,
                  "stdout": out["stdout"][-4000:], "stderr": out["stderr"][-2000:]}))
"""


def peak_rss(argv: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Run argv in a wrapper; its rc, wall seconds, peak RSS (kB), and output tails."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{argv[:3]} failed ({result['rc']}): {result['stderr']}")
    return result


def reindex_peak(url: str, claude: Path, data: Path) -> tuple[dict[str, object], dict[str, object]]:
    env = child_env(env_for(url, claude, data))
    result = peak_rss([str(SESSION_SEARCH), "reindex", "--json"], env)
    return result, json.loads(str(result["stdout"]))


def write_batches(projects: Path, settings_probe: Settings, into: Path) -> int:
    """One JSON line per store write (an embed batch, ids made unique), as IndexRun writes them."""
    chunks = 0
    files = file_chunks(projects, product_cleaner(settings_probe))
    with into.open("w", encoding="utf-8") as fh:
        for batch in embed_batches(files, settings_probe.embed_batch_size):
            kept = unique_ids(batch)
            fh.write(json.dumps([[c.id, c.text, c.metadata] for c in kept]) + "\n")
            chunks += len(kept)
    return chunks


def _store_only_child(batches: Path, data: Path, dims: int) -> int:
    """The store-only child: upsert every batch of the file with random vectors."""
    import numpy as np

    from indexer.chunk import Chunk
    from indexer.store import ChromaStore, IndexIdentity

    store = ChromaStore.open(data, None)
    collection = store.create("bench-store-only", IndexIdentity("ollama", MODEL, dims, "bench", "bench"))
    rng = np.random.default_rng(0)
    with batches.open(encoding="utf-8") as fh:
        for line in fh:
            chunks = [Chunk(i, t, m) for i, t, m in json.loads(line)]
            vectors = rng.standard_normal((len(chunks), dims), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            collection.upsert(chunks, vectors.tolist())
    print(collection.count())
    return 0


def serve_rss(url: str, built_data: Path, built_claude: Path, queries: list[str], dims: int | None) -> dict[str, float]:
    """MB of RSS of `session-search serve`: after the handshake, after the first search, after more."""
    env = child_env(
        env_for(url, built_claude, built_data, dims, SESSION_SEARCH_SHARED_SEARCHER="0")
    )  # this process holds the index
    pipe = McpPipe([str(SESSION_SEARCH), "serve"], env)
    found: dict[str, float] = {}
    try:
        pipe.handshake()
        time.sleep(1.0)
        found["after handshake"] = pipe.status()["VmRSS"] / 1024
        started = time.perf_counter()
        answer = pipe.request("tools/call", {"name": "search", "arguments": {"query": queries[0]}}, timeout_s=300)
        found["first search s"] = time.perf_counter() - started
        if "error" in answer or answer.get("result", {}).get("isError"):
            raise RuntimeError(f"search failed: {str(answer)[:300]}")
        time.sleep(0.5)
        found["after first search"] = pipe.status()["VmRSS"] / 1024
        for q in queries[1:21]:
            pipe.request("tools/call", {"name": "search", "arguments": {"query": q}})
        time.sleep(0.5)
        status = pipe.status()
        found["after 20 more searches"] = status["VmRSS"] / 1024
        found["peak (VmHWM)"] = status["VmHWM"] / 1024
    finally:
        pipe.close()
    return found


def trees_rss_mb(roots: list[int]) -> float:
    """MB of RSS summed over the process trees of roots, each process counted once (a shared one too)."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError):
                pass
    tree, grew = set(roots), True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(pid, 0) for pid in tree) / 2**20


def searcher_pids(data_dir: Path) -> set[int]:
    """The shared searchers living on data_dir (their lock files hold their pids)."""
    from indexer.searcher_client import SearcherPaths

    found = set()
    for lock in data_dir.glob("searcher-*.lock"):
        pid = SearcherPaths(lock.with_suffix(".sock"), lock, lock, lock).holder()
        if pid is not None:
            found.add(pid)
    return found


def wait_searchers_gone(data_dir: Path, timeout_s: float = 60.0) -> None:
    """Each row starts without a searcher: the last row's leaves after its idle spell."""
    deadline = time.monotonic() + timeout_s
    while searcher_pids(data_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a shared searcher on {data_dir} did not exit")
        time.sleep(0.2)


def servers_rss(
    url: str, built_data: Path, built_claude: Path, queries: list[str], dims: int | None, count: int, shared: bool = True
) -> dict[str, float]:
    """count servers over one index, each after the same 21 searches: their summed RSS, and the last
    server's first search against its warm searches (the k-th window's cost)."""
    wait_searchers_gone(built_data)
    switch = {"SESSION_SEARCH_SHARED_SEARCHER": "1" if shared else "0", "SESSION_SEARCH_SEARCHER_IDLE_S": "1"}
    env = child_env(env_for(url, built_claude, built_data, dims, **switch))
    pipes = [McpPipe([str(SESSION_SEARCH), "serve"], env) for _ in range(count)]
    found: dict[str, float] = {}
    try:
        for pipe in pipes:
            pipe.handshake()
        for pipe in pipes:
            first, warm = 0.0, []
            for i, q in enumerate(queries[:21]):
                started = time.perf_counter()
                answer = pipe.request("tools/call", {"name": "search", "arguments": {"query": q}}, timeout_s=300)
                if "error" in answer or answer.get("result", {}).get("isError"):
                    raise RuntimeError(f"search failed: {str(answer)[:300]}")
                spent = (time.perf_counter() - started) * 1e3
                first, warm = (spent, warm) if i == 0 else (first, [*warm, spent])
            found["last server's first search ms"], found["warm search ms"] = first, sorted(warm)[len(warm) // 2]
        # Queries differ in cost (one can take 4x another): the first search is set against the same query, warm.
        again = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            pipes[-1].request("tools/call", {"name": "search", "arguments": {"query": queries[0]}}, timeout_s=300)
            again.append((time.perf_counter() - started) * 1e3)
        found["same query warm ms"] = sorted(again)[len(again) // 2]
        time.sleep(0.5)
        searchers = searcher_pids(built_data)
        found["RSS MB"] = trees_rss_mb([pipe.proc.pid for pipe in pipes] + sorted(searchers))
        found["searchers"] = len(searchers)
    finally:
        for pipe in pipes:
            pipe.close()
    return found


def server_rows(url: str, built: object, queries: list[str], dims: int, counts: list[int]) -> list[list[str]]:
    """A row per count with the shared searcher, after one with it off (each server holds the index)."""
    rows, alone, alone_off = [], None, None
    for count, shared in [(1, False), *((c, True) for c in counts)]:
        log(f"{count} servers over one index, shared searcher {'on' if shared else 'off'}")
        found = servers_rss(url, built.data_dir, built.claude_dir, queries, dims, count, shared)  # type: ignore[attr-defined]
        if not shared:
            alone_off = found["RSS MB"]
        elif count == 1:  # one server and its searcher: what one window costs
            alone = found["RSS MB"]
        first, warm, same = found["last server's first search ms"], found["warm search ms"], found["same query warm ms"]
        rows.append(
            [
                f"{count}, searcher {'on' if shared else 'off'}",
                f"{found['searchers']:.0f}",
                f"{found['RSS MB']:.0f}",
                f"{found['RSS MB'] / alone:.2f}" if alone else "",
                f"{found['RSS MB'] / alone_off:.2f}" if alone_off else "",
                f"{first:.0f}",
                f"{same:.0f}",
                f"{first / same:.1f}",
                f"{warm:.0f}",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small corpus and index")
    parser.add_argument("--mb", type=float, help="MB of JSONL for the big reindex (default 100, quick 3)")
    parser.add_argument("--chunks", type=int, help="chunks in the idle server's index (default 100000, quick 2000)")
    parser.add_argument("--dims", type=int, default=1024, help="dimensions of the idle server's index")
    parser.add_argument(
        "--cache", type=Path, default=default_cache(), help="where the synthetic index is kept between runs (default %(default)s)"
    )
    parser.add_argument("--no-cache", action="store_true", help="build the synthetic index in a temporary dir")
    parser.add_argument("--servers", default="1,2,4", help="server counts over one index (default %(default)s)")
    parser.add_argument("--servers-only", action="store_true", help="only the servers over one index (no reindex)")
    parser.add_argument(
        "--server-reindex",
        action="store_true",
        help="only one server over a copy of the index: its RSS after searches, then after its reindex tool, or its background refresh, indexes one new session",
    )
    parser.add_argument("--child-store-only", nargs=3, metavar=("BATCHES", "DATA", "DIMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_store_only:
        batches, data, dims = args.child_store_only
        return _store_only_child(Path(batches), Path(data), int(dims))
    big = int((args.mb or (3 if args.quick else 100)) * 1e6)
    sizes = [big // 4, big]
    n_chunks = args.chunks or (2000 if args.quick else 100_000)
    print(machine_header("Memory: reindex peak RSS and idle server RSS", ["bench/memory.py", *(argv or sys.argv[1:])]))
    if args.servers_only:
        return _servers_only(args, n_chunks)
    if args.server_reindex:
        return _server_reindex(args, n_chunks)
    reindex_rows, store_rows, serve_rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, standin_process(0.0) as url:
        root = Path(tmp)
        for size in sizes:
            home = build_home(size, root / f"claude-{size}")
            got = jsonl_bytes(home / "projects")
            log(f"reindex of {mb(got):.1f} MB")
            result, report = reindex_peak(url, home, root / f"data-{size}")
            reindex_rows.append(
                [
                    f"{mb(got):.1f}",
                    report["files_indexed"],
                    report["chunks_added"],
                    f"{result['wall']:.1f}",
                    f"{int(result['maxrss_kb']) / 1024:.0f}",
                    f"{int(result['tree_peak_kb']) / 1024:.0f}",
                    f"{mb(du(root / f'data-{size}')):.0f}",
                ]
            )
        last_home, last_data = home, root / f"data-{big}"
        batches = root / "batches.jsonl"
        chunks = write_batches(last_home / "projects", settings_for(url, last_home, root / "unused"), batches)
        log(f"store-only child: {chunks} chunks")
        me = [sys.executable, str(Path(__file__).resolve()), "--child-store-only"]
        store = peak_rss([*me, str(batches), str(root / "store-only"), "2560"])
        (root / "empty.jsonl").write_text("")
        opened = peak_rss([*me, str(root / "empty.jsonl"), str(root / "store-empty"), "2560"])
        python = peak_rss([sys.executable, "-c", "pass"])
        store_rows = [
            ["python, nothing imported", f"{int(python['maxrss_kb']) / 1024:.0f}", ""],
            [
                "import chromadb, open the store, create a collection",
                f"{int(opened['maxrss_kb']) / 1024:.0f}",
                f"{opened['wall']:.1f}",
            ],
            [
                f"store only: {chunks} chunks upserted in the embed batches",
                f"{int(store['maxrss_kb']) / 1024:.0f}",
                f"{store['wall']:.1f}",
            ],
        ]
        reindex_peak_mb = float(reindex_rows[-1][5])  # the whole tree: the reindex and its Chroma writer
        beyond = reindex_peak_mb - int(store["maxrss_kb"]) / 1024

        log(f"synthetic index of {n_chunks:,} chunks at {args.dims} dims")
        cache = None if args.no_cache or args.quick else args.cache
        built = synthetic_index(root / "synthetic", n_chunks, args.dims, cache=cache)
        queries = [q for q, _ in queries_from(built.samples, 25)]
        log("idle servers")
        for label, data, claude, dims in (
            (
                f"{built.chunks:,} synthetic chunks x {args.dims} dims ({mb(du(built.data_dir)):.0f} MB on disk)",
                built.data_dir,
                built.claude_dir,
                args.dims,
            ),
            (f"the {mb(big):.0f} MB reindex above: {reindex_rows[-1][2]} chunks x 2560 dims", last_data, last_home, None),
        ):
            found = serve_rss(url, data, claude, queries, dims)
            serve_rows.append(
                [
                    label,
                    f"{found['after handshake']:.0f}",
                    f"{found['after first search']:.0f}",
                    f"{found['first search s']:.1f}",
                    f"{found['after 20 more searches']:.0f}",
                    f"{found['peak (VmHWM)']:.0f}",
                ]
            )

    print("`session-search reindex --json` into an empty data dir, 2,560 dims, stand-in without delay:\n")
    print(
        table(
            [
                "MB of JSONL",
                "files",
                "chunks",
                "wall s",
                "peak RSS MB, largest process",
                "peak RSS MB, process tree",
                "data dir MB",
            ],
            reindex_rows,
        )
    )
    print("\nChroma's share, same chunks and batches as the last reindex:\n")
    print(table(["child process", "peak RSS MB", "wall s"], store_rows))
    verdict = "met" if beyond <= TARGET_MB else "NOT met"
    print(
        f"\nReindex peak (process tree) beyond the store-only peak: **{beyond:.0f} MB** (target <= {TARGET_MB} MB: {verdict}).\n"
    )
    print("`session-search serve` RSS (MB), SESSION_SEARCH_REFRESH_MINUTES=0:\n")
    print(
        table(
            ["index", "after handshake", "after first search", "first search s", "after 20 more searches", "peak (VmHWM)"],
            serve_rows,
        )
    )
    return 0


SERVER_HEADERS = [
    "servers",
    "searcher processes",
    "RSS MB, all their processes",
    "x one server (searcher on)",
    "x one server (searcher off)",
    "last server's first search ms",
    f"same query warm ms (median of {REPEATS})",
    "first / warm",
    "other queries warm ms (median of 20)",
]


def _servers_only(args: argparse.Namespace, n_chunks: int) -> int:
    counts = [int(c) for c in args.servers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, standin_process(0.0) as url:
        cache = None if args.no_cache or args.quick else args.cache
        built = synthetic_index(Path(tmp) / "synthetic", n_chunks, args.dims, cache=cache)
        queries = [q for q, _ in queries_from(built.samples, 25)]
        rows = server_rows(url, built, queries, args.dims, counts)
    print(
        f"`session-search serve` x N over one index of {built.chunks:,} chunks x {args.dims} dims, each after the same 21 "
        "searches (MCP round trips, query embedding through the stand-in); RSS summed over every process, a shared one once:\n"
    )
    print(table(SERVER_HEADERS, rows))
    return 0


def process_rss_mb(pid: int) -> float:
    """MB of RSS of one process alone."""
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def server_reindex_rss(
    url: str, built_data: Path, queries: list[str], dims: int, where: Path, refresh: bool = False
) -> dict[str, float]:
    """One server (shared searcher on) over a copy of the index: RSS of the server process alone and of
    its tree with the searcher, after 21 searches, then after its `reindex` tool (or, with `refresh`,
    its background refresh) indexes one new session."""
    data, claude = where / "data", where / "claude"
    where.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(built_data), str(data)], check=True)
    (claude / "projects").mkdir(parents=True)
    every = {"SESSION_SEARCH_REFRESH_MINUTES": "0.05"} if refresh else {}
    env = child_env(
        env_for(url, claude, data, dims, SESSION_SEARCH_SHARED_SEARCHER="1", SESSION_SEARCH_SEARCHER_IDLE_S="1", **every)
    )
    pipe = McpPipe([str(SESSION_SEARCH), "serve"], env)
    found: dict[str, float] = {}
    try:
        pipe.handshake()
        for q in queries[:21]:
            pipe.request("tools/call", {"name": "search", "arguments": {"query": q}}, timeout_s=300)
        time.sleep(0.5)
        found["server MB, after searches"] = process_rss_mb(pipe.proc.pid)
        found["with the searcher"] = trees_rss_mb([pipe.proc.pid, *sorted(searcher_pids(data))])
        write_session(claude / "projects", "/w/new", "s-new", exchange("s-new", "/w/new", "a zeppelin question", "an answer"))
        if refresh:
            _await_session(pipe, "zeppelin question", "s-new")
        else:
            answer = pipe.request("tools/call", {"name": "reindex", "arguments": {}}, timeout_s=600)
            report = answer.get("result", {}).get("structuredContent", {})
            if report.get("files_indexed") != 1:
                raise RuntimeError(f"the reindex did not index the one new session: {str(answer)[:300]}")
        time.sleep(0.5)
        found["server MB, after the reindex"] = process_rss_mb(pipe.proc.pid)
        found["with the searcher, after"] = trees_rss_mb([pipe.proc.pid, *sorted(searcher_pids(data))])
    finally:
        pipe.close()
    return found


def _await_session(pipe: McpPipe, query: str, session_id: str, timeout_s: float = 600.0) -> None:
    """Search until the first result is from session_id (the background refresh has indexed it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = pipe.request("tools/call", {"name": "search", "arguments": {"query": query, "top_k": 1}}, timeout_s=300)
        results = answer.get("result", {}).get("structuredContent", {}).get("results", [])
        if results and results[0].get("session_id") == session_id:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the background refresh did not index {session_id} within {timeout_s:g} s")


def _server_reindex(args: argparse.Namespace, n_chunks: int) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, standin_process(0.0) as url:
        cache = None if args.no_cache or args.quick else args.cache
        built = synthetic_index(Path(tmp) / "synthetic", n_chunks, args.dims, cache=cache)
        queries = [q for q, _ in queries_from(built.samples, 25)]
        rows = {
            how: server_reindex_rss(url, built.data_dir, queries, args.dims, Path(tmp) / how, refresh=how == "refresh")
            for how in ("reindex tool", "refresh")
        }
    print(f"One `session-search serve` over a copy of an index of {built.chunks:,} chunks x {args.dims} dims (RSS MB):\n")
    headers = ["new session indexed by", *next(iter(rows.values()))]
    print(table(headers, [[how, *(f"{v:.0f}" for v in found.values())] for how, found in rows.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
