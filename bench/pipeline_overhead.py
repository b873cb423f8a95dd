"""Pipeline overhead: does a full reindex overlap embedding and storing, or add them up?

    .venv/bin/python bench/pipeline_overhead.py            # >= 100 MB of JSONL, 2,560 and 1,024 dims
    .venv/bin/python bench/pipeline_overhead.py --quick    # a few MB, for CI
    .venv/bin/python bench/pipeline_overhead.py --runs 2560:0.3,1024:0.3,1024:0.02

Over one temporary Claude home (the real transcripts copied under new uuids to the target size),
for each DIMS:DELAY run, in one process:
  (a) wall: `SessionSearch.reindex()` into an empty data dir (everything: discover, parse, chunk,
      embed through the stand-in, store, ledger, switch);
  (b) embed: the same chunk texts, in the same batches of `embed_batch_size` (filled across files,
      as IndexRun fills them), through the same OllamaEmbedder with `embed_concurrency` requests in
      flight, nothing else;
  (c) store: VectorCollection.upsert of the same chunks and batches into an empty collection,
      one after another, with precomputed random vectors (only the upsert calls are timed; once
      per DIMS);
and, to explain the ratio, parse+chunk alone and the ledger writes alone (mark_pending + record),
a trace of (a) (when the stand-in was busy with a request, when an upsert was running), the same
upserts in writes of 1,000, and how much of the GIL an upsert leaves to other threads.
Target: wall / max(embed, store) <= 1.15.

The stand-in (bench/common.py FastStandIn) runs in its own process, as Ollama does; DELAY is its
fixed latency per /api/embed request of 32 inputs and models the GPU (requests in flight wait
concurrently). The default runs use 0.6 s (about 18k tokens/s for qwen3-embedding:4b, a desktop
GPU), which makes embedding the bottleneck at both dimension counts here, and 0.02 s at 2,560
dims, where storing is the bottleneck. One run per cell: on a shared 2-core machine, compare the
cells of one report, and read the trace table, which is measured inside the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    MODEL,
    PrecomputedEmbedder,
    build_home,
    covered,
    du,
    embed_batches,
    file_chunks,
    jsonl_bytes,
    log,
    machine_header,
    mb,
    median,
    overlap,
    p95,
    product_cleaner,
    queries_from,
    search_without_embedding,
    settings_for,
    standin_intervals,
    standin_process,
    table,
    unique_ids,
)

from indexer.chunk import Chunk, encoding
from indexer.config import Settings
from indexer.embed import OllamaEmbedder
from indexer.ledger import Ledger
from indexer.models import SearchRequest
from indexer.service import SessionSearch
from indexer.sources import SourceFile
from indexer.store import (
    WRITE_BATCH,
    ChromaStore,
    IndexIdentity,
    VectorCollection,
    forget_open_clients,
)

Files = list[tuple[SourceFile, list[Chunk]]]
Batches = list[list[Chunk]]
DEFAULT_RUNS = "2560:0.6,2560:0.02,1024:0.6"


@dataclass(slots=True)
class Wall:
    seconds: float
    cpu: float
    chunks: int
    model_busy: float  # the stand-in had at least one /api/embed request in hand
    store_busy: float  # an upsert was running
    both: float  # both at once


def reindex_wall(settings: Settings) -> Wall:
    """A reindex into an empty data dir, with when the model and the store were busy.

    A big run writes Chroma from a child process (indexer/writer_process.py): its upserts are
    timed from this side (send to acknowledgement) and its CPU is counted with this process's.
    """
    import resource

    from indexer.writer_process import ChildWrites

    upserts: list[tuple[float, float]] = []
    originals = {cls: cls.upsert for cls in (VectorCollection, ChildWrites)}

    def traced_for(cls: type) -> Any:
        def traced(self: VectorCollection, chunks: Any, vectors: Any) -> None:
            started = time.monotonic()
            try:
                originals[cls](self, chunks, vectors)
            finally:
                upserts.append((started, time.monotonic()))

        return traced

    async def run() -> int:
        async with SessionSearch(settings) as index:
            return (await index.reindex()).chunks_added

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    forget_open_clients()
    standin_intervals(settings.ollama_host)  # forget earlier requests
    for cls in originals:
        cls.upsert = traced_for(cls)  # type: ignore[method-assign]
    try:
        wall, cpu = time.perf_counter(), time.process_time() + children_cpu()
        added = anyio.run(run)
        wall, cpu = time.perf_counter() - wall, time.process_time() + children_cpu() - cpu
    finally:
        for cls, original in originals.items():
            cls.upsert = original  # type: ignore[method-assign]
    model = standin_intervals(settings.ollama_host)
    return Wall(wall, cpu, added, covered(model), covered(upserts), overlap(model, upserts))


def embed_alone(settings: Settings, batches: Batches) -> float:
    """Seconds to embed every batch with embed_concurrency requests in flight, as IndexRun does."""
    template = SessionSearch(settings).template
    texts = [[template.format_document(c.text) for c in batch] for batch in batches]

    async def run() -> float:
        embedder = OllamaEmbedder(
            settings.ollama_host,
            settings.model,
            dimensions=settings.dimensions,
            timeout_s=settings.embed_timeout_s,
            num_ctx=settings.num_ctx,
            batch_size=settings.embed_batch_size,
        )
        try:
            await embedder.warm()
            slots = anyio.Semaphore(settings.embed_concurrency)

            async def one(batch: list[str]) -> None:
                try:
                    await embedder.embed(batch)
                finally:
                    slots.release()

            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for batch in texts:
                    await slots.acquire()
                    group.start_soon(one, batch)
            return time.perf_counter() - started
        finally:
            await embedder.aclose()

    return anyio.run(run)


def store_alone(root: Path, batches: Batches, dims: int) -> float:
    """Seconds spent in VectorCollection.upsert, write by write, into an empty collection."""
    forget_open_clients()
    store = ChromaStore.open(root, None)
    collection = store.create("bench-store-only", IndexIdentity("ollama", MODEL, dims, "bench", "bench"))
    rng = np.random.default_rng(0)
    spent = 0.0
    for batch in batches:
        kept = unique_ids(batch)
        vectors = rng.standard_normal((len(kept), dims), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        as_lists = vectors.tolist()  # what the embedder hands the store: lists of floats
        started = time.perf_counter()
        collection.upsert(kept, as_lists)
        spent += time.perf_counter() - started
    forget_open_clients()
    return spent


def gil_share(root: Path, batches: Batches, dims: int) -> float:
    """How fast a pure-Python thread counts while upserts run, as a share of its speed alone.

    1.0: the upserts left the GIL free (the event loop could go on); near 0: they held it.
    """
    forget_open_clients()
    store = ChromaStore.open(root, None)
    collection = store.create("bench-gil", IndexIdentity("ollama", MODEL, dims, "bench", "bench"))
    rng = np.random.default_rng(1)
    writes = []
    for batch in batches:
        kept = unique_ids(batch)
        vectors = rng.standard_normal((len(kept), dims), dtype=np.float32)
        writes.append((kept, (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()))
    count, stop = [0], threading.Event()

    def counter() -> None:
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=counter, daemon=True)
    started = time.perf_counter()
    thread.start()
    time.sleep(1.0)
    alone = count[0] / (time.perf_counter() - started)  # counts per second with nothing else running
    before, started = count[0], time.perf_counter()
    for kept, vectors in writes:
        collection.upsert(kept, vectors)
    during = (count[0] - before) / (time.perf_counter() - started)
    stop.set()
    thread.join()
    forget_open_clients()
    return during / alone


def ledger_alone(root: Path, files: Files) -> float:
    """Seconds of the ledger writes a fresh index makes: mark_pending and record, per file."""
    ledger = Ledger(root / "ledger.sqlite")
    started = time.perf_counter()
    for source, chunks in files:
        ledger.mark_pending("bench", source.rel_path, chunks)
        ledger.record("bench", source, source.session_hint, chunks)
    spent = time.perf_counter() - started
    ledger.close()
    return spent


def parse_alone(projects: Path, settings: Settings) -> tuple[float, Files]:
    """Seconds to discover, parse (with the product's cleaner) and chunk every transcript."""
    clean = product_cleaner(settings)
    started = time.perf_counter()
    files = file_chunks(projects, clean)
    return time.perf_counter() - started, files


def search_ms(settings: Settings, files: Files, count: int) -> tuple[float, float]:
    """p50 and p95 ms of hybrid SessionSearch.search over the built index, query embedding excluded."""
    samples = [(c.text, str(c.metadata["session_id"])) for _, chunks in files for c in chunks[::7]]
    queries = [q for q, _ in queries_from(samples, count)]
    forget_open_clients()
    embedder = PrecomputedEmbedder(settings.dimensions or 2560)

    async def run() -> list[float]:
        index = search_without_embedding(settings, embedder)
        for q in queries:
            embedder.add(index.template.format_query(q))
        times = []
        try:
            for q in queries[:10]:
                await index.search(SearchRequest(query=q))
            for q in queries:
                started = time.perf_counter()
                await index.search(SearchRequest(query=q))
                times.append((time.perf_counter() - started) * 1e3)
        finally:
            await index.aclose()
        return times

    times = anyio.run(run)
    return median(times), p95(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few MB instead of >= 100 MB")
    parser.add_argument("--mb", type=float, help="MB of JSONL to index (default 100, quick 3)")
    parser.add_argument(
        "--runs",
        default=DEFAULT_RUNS,
        help=f"DIMS:DELAY,... (default {DEFAULT_RUNS}); DELAY is the stand-in's seconds per /api/embed",
    )
    args = parser.parse_args(argv)
    target = int((args.mb or (3 if args.quick else 100)) * 1e6)
    runs = [(int(d), float(t)) for d, t in (item.split(":") for item in args.runs.split(","))]
    print(
        machine_header(
            "Pipeline overhead: reindex wall vs embedding alone and storing alone",
            ["bench/pipeline_overhead.py", *(argv or sys.argv[1:])],
        )
    )
    encoding()

    rows, trace_rows, size_rows, store_rows = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp)
        home = build_home(target, root / "claude")
        size, n_files = jsonl_bytes(home / "projects"), sum(1 for _ in (home / "projects").rglob("*.jsonl"))
        probe = settings_for("http://127.0.0.1:9", home, root / "unused")
        parse_s, files = parse_alone(home / "projects", probe)
        batches = embed_batches(files, probe.embed_batch_size)
        n_chunks = sum(len(c) for _, c in files)
        log(f"{mb(size):.1f} MB in {n_files} files: {n_chunks} chunks in {len(batches)} batches; parse+chunk {parse_s:.1f} s")
        alone: dict[int, tuple[float, float]] = {}
        last: dict[int, Settings] = {}
        for dims, delay in runs:
            if dims not in alone:
                alone[dims] = (store_alone(root / f"store-{dims}", batches, dims), ledger_alone(root / f"ledger-{dims}", files))
                log(f"{dims} dims: store alone {alone[dims][0]:.1f} s, ledger alone {alone[dims][1]:.1f} s")
            store_s, ledger_s = alone[dims]
            with standin_process(delay) as url:
                settings = settings_for(url, home, root / f"data-{dims}-{delay}", dims)
                wall = reindex_wall(settings)
                embed_s = embed_alone(settings, batches)
            last[dims] = settings
            log(
                f"{dims} dims, delay {delay}: wall {wall.seconds:.1f} s (cpu {wall.cpu:.1f} s, {wall.chunks} chunks), embed alone {embed_s:.1f} s"
            )
            ratio = wall.seconds / max(embed_s, store_s)
            rows.append(
                [
                    dims,
                    delay,
                    wall.chunks,
                    f"{wall.seconds:.1f}",
                    f"{embed_s:.1f}",
                    f"{store_s:.1f}",
                    f"{parse_s:.1f}",
                    f"{ledger_s:.1f}",
                    "embed" if embed_s >= store_s else "store",
                    f"{ratio:.2f}",
                    "yes" if ratio <= 1.15 else "NO",
                ]
            )
            trace_rows.append(
                [
                    dims,
                    delay,
                    f"{wall.seconds:.1f}",
                    f"{wall.cpu:.1f}",
                    f"{wall.model_busy:.1f}",
                    f"{wall.store_busy:.1f}",
                    f"{wall.both:.1f}",
                    f"{wall.seconds - (wall.model_busy + wall.store_busy - wall.both):.1f}",
                ]
            )
        for dims, settings in last.items():
            data = settings.data_dir
            chroma, ledger_bytes = du(data / "chroma"), du(data) - du(data / "chroma")
            p50, p95_ms = search_ms(settings, files, 40 if args.quick else 100)
            size_rows.append(
                [
                    dims,
                    f"{alone[dims][0]:.1f}",
                    f"{mb(chroma):.0f}",
                    f"{mb(ledger_bytes):.0f}",
                    f"{mb(chroma + ledger_bytes):.0f}",
                    f"{p50:.1f}",
                    f"{p95_ms:.1f}",
                ]
            )
        dims = runs[0][0]
        big = embed_batches(files, WRITE_BATCH)
        big_s = store_alone(root / "store-big", big, dims)
        share = gil_share(root / "store-gil", batches[:40], dims)
        store_rows = [
            [
                f"{len(batches)} writes of {probe.embed_batch_size} (what IndexRun does)",
                f"{alone[dims][0]:.1f}",
                f"{n_chunks / alone[dims][0]:.0f}",
            ],
            [
                f"{len(big)} writes of {WRITE_BATCH} (VectorCollection's own batch limit)",
                f"{big_s:.1f}",
                f"{n_chunks / big_s:.0f}",
            ],
        ]

    print(
        f"Corpus: {mb(size):.1f} MB of JSONL in {n_files} files, {n_chunks} chunks, {len(batches)} embed batches "
        f"(batch size {probe.embed_batch_size}, filled across files as IndexRun does; embed_concurrency {probe.embed_concurrency}); "
        "one run per cell.\n"
    )
    print(
        table(
            [
                "dims",
                "delay s/request",
                "chunks",
                "(a) reindex wall s",
                "(b) embed alone s",
                "(c) store alone s",
                "parse+chunk alone s",
                "ledger alone s",
                "bottleneck",
                "wall / max(b, c)",
                "<= 1.15",
            ],
            rows,
        )
    )
    print(
        "\nInside (a): seconds during which the stand-in was working on at least one /api/embed request (model busy), "
        "an upsert was running (store busy), both at once, and neither:\n"
    )
    print(
        table(
            [
                "dims",
                "delay",
                "wall s",
                "CPU s of the indexer and its Chroma writer",
                "model busy s",
                "store busy s",
                "both s",
                "neither s",
            ],
            trace_rows,
        )
    )
    print(f"\nStoring the same chunks at {dims} dims, upserts only:\n")
    print(table(["writes", "seconds", "chunks/s"], store_rows))
    print(
        f"\nWhile Chroma upserts (embed-sized writes) run in one thread, a pure-Python thread counts at {share:.0%} of its speed "
        "alone: the upsert holds the GIL for most of its time, which is why a big reindex writes Chroma from a child "
        "process (in one process, the event loop that parses and sends and decodes embed requests would stall meanwhile).\n"
    )
    print(
        "What fewer dimensions buy (same chunks; disk after (a); search = hybrid SessionSearch.search with the query "
        "vector precomputed, top_k 10, no filter, over the index (a) built):\n"
    )
    print(
        table(
            ["dims", "store alone s", "Chroma on disk MB", "ledger MB", "data dir MB", "search p50 ms", "search p95 ms"],
            size_rows,
        )
    )
    print()
    print(
        "- (a) is `SessionSearch.reindex()` in this process, which writes Chroma from a child process (a run of 20 files or more); CPU s counts all its threads and that child (the stand-in runs in its own process)."
    )
    print(
        "- (b) and (c) use the same batches as (a); (c) times only the upsert calls, one after another, as the single store worker makes them."
    )
    if len(size_rows) > 1:
        a, b = size_rows[0], size_rows[-1]
        print(
            f"- {b[0]} instead of {a[0]} dims: store alone {a[1]} -> {b[1]} s, Chroma on disk {a[2]} -> {b[2]} MB, "
            f"hybrid search p50 {a[5]} -> {b[5]} ms."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
