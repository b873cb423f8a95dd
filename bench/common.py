"""Shared helpers for the performance benchmarks (search_latency, cold_start, pipeline_overhead,
incremental, memory). The product never imports this.

What is here:
- `machine_header()`: the lines every report starts with (cores, CPU, Python, Chroma).
- `FastStandIn` / `standin_process()`: the test suite's Ollama stand-in (tests/ollama_standin.py,
  a real HTTP server) with cheap vectors: random unit vectors from numpy, sent with orjson. The
  stock stand-in hashes every word in pure Python and encodes with `json`, about 120 ms of CPU
  per 32 x 2,560 batch, which on 2 cores would be charged to the product. `delay_s` still models
  the model's time per request. `python bench/common.py standin --delay 0.02` runs one in its own
  process (as Ollama is) and prints its URL.
- `build_home()`: the real transcripts copied to a target size under new uuids, so that every
  copy gives new chunk ids (ids come from message uuids; a plain copy would be de-duplicated).
- `build_synthetic_index()`: a served collection of N synthetic chunks, written with the
  product's own VectorCollection.upsert and Ledger.record (vectors, documents, metadata and the
  keyword index), without parsing or embedding over HTTP. Texts are lines of the real chunks
  recombined; vectors are exactly the stand-in's `embed_text` of each text (computed per line).
- `SearchWithoutEmbedding`: SessionSearch whose query embedder returns precomputed vectors, so
  a timed search is everything the server does except asking Ollama.
- `McpPipe`: raw JSON-RPC lines over a child's stdin/stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import numpy as np
import orjson
from ollama_standin import OllamaStandIn

from indexer.chunk import Chunk, ChunkerSpec, chunk_transcript
from indexer.config import Settings, load_settings
from indexer.parse import parse_file
from indexer.sources import SourceFile, discover

FIXTURE_HOME = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")).resolve()
FIXTURES = FIXTURE_HOME / "projects"
BIN = Path(sys.executable).parent
SESSION_SEARCH = BIN / "session-search"
SPEC = ChunkerSpec("exchange", 400, 64, 1500)  # the default settings' chunker
MODEL = "qwen3-embedding:4b"
NATIVE_DIMS = 2560
PROTOCOL = "2025-06-18"
_UUID = re.compile(rb"[0-9a-f]{8}(?=-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_UUID_TEXT = re.compile(r"[0-9a-f]{8}(?=-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the report ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_header(title: str, argv: Sequence[str]) -> str:
    import chromadb

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        f"# {title}",
        "",
        f"- command: `{' '.join(['python', *argv])}`",
        (f"- machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
         f"Python {platform.python_version()}, chromadb {chromadb.__version__}, load average {load} at start"),
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
    ])


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    def cell(value: object) -> str:
        return f"{value:.3g}" if isinstance(value, float) and abs(value) < 1 else (f"{value:,.1f}" if isinstance(value, float) else str(value))
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def du(path: Path) -> int:
    """Bytes on disk under path (allocated blocks, as du counts them)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6


# -- settings --------------------------------------------------------------------------------


def env_for(ollama_url: str, claude_dir: Path, data_dir: Path, dims: int | None = None, **extra: str) -> dict[str, str]:
    """The variables a user would set; refresh off, so nothing runs in the background."""
    env = {
        "OLLAMA_HOST": ollama_url,
        "SESSION_SEARCH_CLAUDE_DIR": str(claude_dir),
        "SESSION_SEARCH_DATA_DIR": str(data_dir),
        "SESSION_SEARCH_REFRESH_MINUTES": "0",
        **extra,
    }
    if dims and dims != NATIVE_DIMS:
        env["SESSION_SEARCH_DIMENSIONS"] = str(dims)
    return env


def settings_for(ollama_url: str, claude_dir: Path, data_dir: Path, dims: int | None = None, **extra: str) -> Settings:
    return load_settings(environ=env_for(ollama_url, claude_dir, data_dir, dims, **extra))


def child_env(env: dict[str, str]) -> dict[str, str]:
    """os.environ with the product's own variables replaced by env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_SEARCH_") and k != "OLLAMA_HOST"}
    return {**base, **env}


# -- the Ollama stand-in with cheap vectors ---------------------------------------------------


class FastStandIn(OllamaStandIn):
    """The stand-in with random unit vectors and orjson encoding (see the module docstring).

    Vectors are fresh random draws per request, so a replicated corpus still gives distinct
    vectors (HNSW handles exact duplicates unusually). prompt_eval_count is len/4, which keeps
    the product's truncation check quiet, as a real model would.
    """

    def _vectors(self, key: str, texts: list[str], dims: int, truncate: Any) -> tuple[Any, int]:
        vectors = np.random.default_rng().standard_normal((len(texts), dims), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors, sum(len(t) for t in texts) // 4

    def handle(self, method: str, path: str, read_body: Any) -> tuple[int, dict[str, Any] | str]:
        if path == "/bench/intervals":  # (start, end) of every /api/embed since the last call, on CLOCK_MONOTONIC
            with self.lock:
                spans, self._spans = list(getattr(self, "_spans", [])), []
            return 200, {"intervals": spans}
        started = time.monotonic()
        status, body = super().handle(method, path, read_body)
        if isinstance(body, dict) and "embeddings" in body:
            # A str body goes out as-is; the ollama client parses it as JSON whatever its type.
            text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            with self.lock:
                self._spans = [*getattr(self, "_spans", []), (started, time.monotonic())]
            return status, text
        return status, body


@contextmanager
def standin_process(delay_s: float = 0.0) -> Iterator[str]:
    """A FastStandIn in its own process, as Ollama is; yields its URL."""
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "standin", "--delay", str(delay_s)],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )
    try:
        url = (child.stdout.readline() if child.stdout else "").strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the stand-in did not start (got {url!r})")
        yield url
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def standin_intervals(url: str) -> list[tuple[float, float]]:
    """The (start, end) of each /api/embed a standin_process served since the last call (time.monotonic)."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/bench/intervals", timeout=10) as answer:
        return [tuple(span) for span in json.loads(answer.read())["intervals"]]


def union(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping intervals merged."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def covered(spans: Sequence[tuple[float, float]]) -> float:
    return sum(end - start for start, end in union(spans))


def overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Seconds during which both some interval of a and some interval of b were running."""
    total, ua, ub, i, j = 0.0, union(a), union(b), 0, 0
    while i < len(ua) and j < len(ub):
        total += max(0.0, min(ua[i][1], ub[j][1]) - max(ua[i][0], ub[j][0]))
        if ua[i][1] < ub[j][1]:
            i += 1
        else:
            j += 1
    return total


def _serve_standin(delay_s: float) -> int:
    standin = FastStandIn()
    standin.delay_s = delay_s
    standin.start()
    print(standin.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    standin.stop()
    return 0


# -- a bigger Claude home from the real transcripts --------------------------------------------


def _renamed(data: bytes, copy: int) -> bytes:
    """data with the first 8 hex digits of every uuid XORed with a per-copy key (0: unchanged)."""
    if copy == 0:
        return data
    key = (copy * 0x9E3779B1) & 0xFFFFFFFF
    return _UUID.sub(lambda m: b"%08x" % (int(m.group(0), 16) ^ key), data)


def _renamed_name(name: str, copy: int) -> str:
    """A path part of copy `copy`: uuids renamed as in the records; agent-<id> files (not uuids) get a suffix."""
    if copy == 0:
        return name
    key = (copy * 0x9E3779B1) & 0xFFFFFFFF
    if name.startswith("agent-"):
        stem, dot, rest = name.partition(".")
        return f"{stem}-c{copy}{dot}{rest}"
    return _UUID_TEXT.sub(lambda m: f"{int(m.group(0), 16) ^ key:08x}", name)


def jsonl_bytes(projects: Path) -> int:
    return sum(s.size for s in discover(projects))


def build_home(target_bytes: int, into: Path, fixtures: Path = FIXTURES) -> Path:
    """A Claude home at into/ whose projects hold copies of the fixtures, >= target_bytes of JSONL.

    Each copy renames every uuid (file names, folders and records alike), so its sessions,
    messages and chunk ids are new. Whole project folders are copied until discover() finds
    target_bytes in the copy.
    """
    out = into / "projects"
    folders = sorted(p for p in fixtures.iterdir() if p.is_dir())
    copy = 0
    while True:
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    rel = path.relative_to(fixtures)
                    target = out.joinpath(*(_renamed_name(part, copy) for part in rel.parts))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(_renamed(path.read_bytes(), copy))
            if jsonl_bytes(out) >= target_bytes:
                return into
        copy += 1


def product_cleaner(settings: Settings) -> Any:
    """The text cleaner (redaction) a reindex with these settings applies while parsing, if the product has one."""
    from indexer.service import SessionSearch

    redactor = getattr(SessionSearch(settings), "redactor", None)
    return getattr(redactor, "redact_text", None)


def file_chunks(projects: Path, clean: Any = None) -> list[tuple[SourceFile, list[Chunk]]]:
    """Every transcript's chunks, as a fresh index's IndexRun makes them (clean: the product's cleaner)."""
    found = []
    for source in discover(projects):
        transcript = parse_file(source, SPEC.tool_output_chars, clean) if clean else parse_file(source, SPEC.tool_output_chars)
        found.append((source, list(chunk_transcript(transcript, SPEC))))
    return found


def embed_batches(files: Sequence[tuple[SourceFile, list[Chunk]]], batch_size: int) -> list[list[Chunk]]:
    """The embed requests IndexRun makes on a fresh index: batches fill across files, in file order."""
    flat = [c for _, chunks in files for c in chunks]
    return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]


def unique_ids(batch: Sequence[Chunk]) -> list[Chunk]:
    """One chunk per id, the later wins, as the store worker writes a batch."""
    return list({c.id: c for c in batch}.values())


# -- a synthetic index, written with the product's own store and ledger ----------------------

TARGET_PROJECT = "/home/dev/src/target-service"  # gets about 2% of the chunks
PROJECT_SHARE = 0.02
SINCE_DAYS = 36  # a `since` this far back from END selects about 10% of the chunks
END = datetime(2026, 3, 1, tzinfo=UTC)
SPAN_DAYS = 365
CACHE_VERSION = 2


@dataclass(slots=True)
class Corpus:
    """What synthetic chunks are made of: lines, lengths and tool lists of the real chunks."""

    lines: list[str]
    lengths: list[int]
    tools: list[list[str]]

    @classmethod
    def from_fixtures(cls, projects: Path = FIXTURES) -> Corpus:
        lines: list[str] = []
        lengths: list[int] = []
        tools: list[list[str]] = []
        for source in discover(projects):
            for chunk in chunk_transcript(parse_file(source, SPEC.tool_output_chars), SPEC):
                lengths.append(len(chunk.text))
                tools.append(list(chunk.metadata.get("tools") or []))  # type: ignore[arg-type]
                lines += [line.strip()[:400] for line in chunk.text.splitlines() if len(line.strip()) >= 20]
        return cls(lines, lengths, tools)

    def compose(self, rng: random.Random) -> tuple[str, list[int]]:
        """A chunk text of a real chunk's length, made of random lines; and the indexes of its lines."""
        want = rng.choice(self.lengths)
        ids = [rng.randrange(len(self.lines)), rng.randrange(len(self.lines))]
        size = len(self.lines[ids[0]]) + len(self.lines[ids[1]]) + len(PREFIX_WORDS[0]) + len(PREFIX_WORDS[1]) + 5
        while size < want:
            ids.append(rng.randrange(len(self.lines)))
            size += len(self.lines[ids[-1]]) + 1
        head = [f"{PREFIX_WORDS[0]}: {self.lines[ids[0]]}", f"{PREFIX_WORDS[1]}: {self.lines[ids[1]]}"]
        return "\n".join(head + [self.lines[i] for i in ids[2:]]), ids


PREFIX_WORDS = ("User", "Assistant")


class LineVectors:
    """The stand-in's `embed_text` vectors of composed chunks, without embedding each text.

    embed_text sums signed hashed features of each word (and its trigrams), then normalises. Words
    never span lines, so a chunk's vector is the normalised sum of its lines' raw features: each
    line is hashed once, and a chunk costs one np.bincount.
    """

    def __init__(self, lines: Sequence[str], dims: int):
        from ollama_standin import _token_features, tokenize

        def features(text: str) -> tuple[np.ndarray, np.ndarray]:
            found = [f for word in tokenize(text) for f in _token_features(word, dims)]
            return np.array([b for b, _ in found], dtype=np.int64), np.array([w for _, w in found], dtype=np.float64)

        self.dims = dims
        self.lines = [features(line) for line in lines]
        self.prefix = features(" ".join(PREFIX_WORDS))

    def vectors(self, compositions: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.empty((len(compositions), self.dims), dtype=np.float32)
        for row, ids in enumerate(compositions):
            parts = [self.prefix] + [self.lines[i] for i in ids]
            vector = np.bincount(np.concatenate([b for b, _ in parts]), np.concatenate([w for _, w in parts]), minlength=self.dims)
            norm = np.linalg.norm(vector)
            if norm == 0:
                vector[0], norm = 1.0, 1.0
            out[row] = vector / norm
        return out


@dataclass(slots=True)
class SyntheticIndex:
    """A built index and what queries and filters need from it."""

    data_dir: Path
    claude_dir: Path
    chunks: int
    dims: int
    samples: list[tuple[str, str]]  # (text, session_id) of some chunks, for queries
    project_fraction: float
    since: str
    since_fraction: float
    session_chunks_median: float
    build_s: float = 0.0
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in self.__slots__ if k not in ("data_dir", "claude_dir", "reused")}
        return json.dumps(data)


def _sessions(n: int, rng: random.Random) -> Iterator[tuple[int, str, bool]]:
    """(chunk count, project, is_subagent) per session, until n chunks."""
    others = [f"/home/dev/src/project-{k:02d}" for k in range(49)]
    weights = [1 / (k + 1) for k in range(len(others))]
    made = 0
    while made < n:
        size = min(rng.randint(5, 45), n - made)
        project = TARGET_PROJECT if rng.random() < PROJECT_SHARE else rng.choices(others, weights)[0]
        yield size, project, rng.random() < 0.12
        made += size


def _session_chunks(
    corpus: Corpus, rng: random.Random, size: int, project: str, subagent: bool, claude_dir: Path
) -> tuple[SourceFile, list[Chunk], list[list[int]]]:
    """One session's source file, chunks, and the line indexes each chunk is made of."""
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    agent_id = f"a{rng.getrandbits(28):07x}" if subagent else ""
    folder = re.sub(r"[^A-Za-z0-9]", "-", project)
    rel_path = f"{folder}/{session_id}/subagents/agent-{agent_id}.jsonl" if subagent else f"{folder}/{session_id}.jsonl"
    start = END - timedelta(seconds=rng.uniform(0, SPAN_DAYS * 86400))
    branch = rng.choice(["main", "main", "master", "dev", f"feature/{rng.getrandbits(16):04x}"])
    chunks: list[Chunk] = []
    compositions: list[list[int]] = []
    line = 1
    for k in range(size):
        text, ids = corpus.compose(rng)
        compositions.append(ids)
        when = start + timedelta(minutes=3 * k)
        lines = rng.randint(3, 40)
        meta: dict[str, Any] = {
            "session_id": session_id, "project": project, "git_branch": branch,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "is_sidechain": subagent, "agent_id": agent_id,
            "first_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "last_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "source_path": str(claude_dir / "projects" / rel_path), "line_start": line, "line_end": line + lines,
            "kind": "compaction_summary" if rng.random() < 0.02 else "exchange", "chunker": SPEC.name,
            "ts_epoch": int(when.timestamp()), "window": 0,
            "content_hash": hashlib.sha256(text.encode()).hexdigest()[:32],
        }
        tools = rng.choice(corpus.tools)
        if tools:
            meta["tools"] = tools
        chunk_id = hashlib.sha256(f"{SPEC.name}\0{meta['first_uuid']}\0{0}".encode()).hexdigest()[:32]
        chunks.append(Chunk(chunk_id, text, meta))
        line += lines + 1
    mtime_ns = int((start + timedelta(minutes=3 * size)).timestamp() * 1e9)
    source = SourceFile(claude_dir / "projects" / rel_path, rel_path, session_id, agent_id or None, None, sum(len(c.text) for c in chunks), mtime_ns)
    return source, chunks, compositions


def build_synthetic_index(
    data_dir: Path, claude_dir: Path, n: int, dims: int, seed: int = 0, corpus: Corpus | None = None
) -> SyntheticIndex:
    """n synthetic chunks in a served collection at data_dir, as a reindex would leave them.

    Sessions of 5-45 chunks; 50 projects, TARGET_PROJECT with about 2% of the chunks, the others
    Zipf-weighted; 12% subagent transcripts; timestamps over the year before END. Written in
    batches of about 1,000 chunks (the product's WRITE_BATCH) with VectorCollection.upsert and,
    per session, Ledger.record (chunk rows, source row and the FTS5 keyword rows).
    """
    from indexer.embed import ModelFacts
    from indexer.ledger import CollectionRecord, Ledger
    from indexer.service import SessionSearch
    from indexer.store import WRITE_BATCH, ChromaStore

    started = time.perf_counter()
    corpus = corpus or Corpus.from_fixtures()
    rng = random.Random(seed)
    settings = settings_for("http://127.0.0.1:9", claude_dir, data_dir, dims)
    service = SessionSearch(settings)  # for the identity and template a reindex would use
    template = service.template
    identity = service._identity(ModelFacts(settings.model, dims, NATIVE_DIMS, None))
    (claude_dir / "projects").mkdir(parents=True, exist_ok=True)
    ledger = Ledger(data_dir / "ledger.sqlite")
    store = ChromaStore.open(data_dir, None)
    name = identity.new_collection_name()
    ledger.add_collection(CollectionRecord(name, identity.to_json(), template.format_query("{query}")))
    ledger.set_meta("building", name)
    collection = store.create(name, identity)
    since_epoch = int((END - timedelta(days=SINCE_DAYS)).timestamp())
    samples: list[tuple[str, str]] = []
    pending: list[tuple[SourceFile, list[Chunk], list[list[int]]]] = []
    line_vectors = LineVectors(corpus.lines, dims)
    made = in_project = recent = 0
    sizes: list[int] = []

    def flush() -> None:
        chunks = [c for _, cs, _ in pending for c in cs]
        vectors = line_vectors.vectors([ids for _, _, composed in pending for ids in composed])
        collection.upsert(chunks, vectors.tolist())
        for source, cs, _ in pending:
            ledger.record(name, source, source.session_hint, cs)
        pending.clear()

    for size, project, subagent in _sessions(n, rng):
        source, chunks, composed = _session_chunks(corpus, rng, size, project, subagent, claude_dir)
        pending.append((source, chunks, composed))
        sizes.append(size)
        made += size
        in_project += size if project == TARGET_PROJECT else 0
        recent += sum(1 for c in chunks if int(c.metadata["ts_epoch"]) >= since_epoch)  # type: ignore[call-overload]
        if rng.random() < 2000 / max(n / 25, 1):
            c = rng.choice(chunks)
            samples.append((c.text, str(c.metadata["session_id"])))
        if sum(len(cs) for _, cs, _ in pending) >= WRITE_BATCH:
            flush()
            if made % 20000 < WRITE_BATCH:
                log(f"  synthetic index: {made:,}/{n:,} chunks, {time.perf_counter() - started:.0f} s")
    if pending:
        flush()
    ledger.switch_active(name)
    ledger.set_meta("generation", uuid.uuid4().hex)
    ledger.set_meta("last_indexed", datetime.now(UTC).isoformat(timespec="seconds"))
    ledger.close()
    from indexer.store import forget_open_clients

    forget_open_clients()
    since = (END - timedelta(days=SINCE_DAYS)).isoformat().replace("+00:00", "Z")
    return SyntheticIndex(
        data_dir, claude_dir, made, dims, samples, in_project / made, since, recent / made, median(sizes),
        build_s=time.perf_counter() - started,
    )


def default_cache() -> Path:
    """Where built synthetic indexes are kept between runs: $XDG_CACHE_HOME/session-search-bench."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "session-search-bench"


def _store_code_key() -> str:
    """Changes when what wrote a cached index changes: chromadb, the store's write path (not its
    connection code), the ledger's format (not its code: a ledger upgrades an older format itself)."""
    import inspect

    import chromadb

    from indexer import store
    from indexer.ledger import FORMAT

    digest = hashlib.sha256(chromadb.__version__.encode())
    for part in (store.VectorCollection.upsert, store.ChromaStore.create, store.IndexIdentity):
        digest.update(inspect.getsource(part).encode())
    digest.update(f"{store.HNSW} {store.SCHEMA_VERSION} {store.WRITE_BATCH} ledger format {FORMAT}".encode())
    return digest.hexdigest()[:10]


def synthetic_index(root: Path, n: int, dims: int, seed: int = 0, corpus: Corpus | None = None, cache: Path | None = None) -> SyntheticIndex:
    """build_synthetic_index under root; or, with cache, the one kept there by an earlier run with the
    same n, dims, seed, builder version and store write path. Several worktrees share the cache: a
    build holds `<dir>.lock` (another run waits for it), and other versions are left for their owners."""
    if cache is None:
        return build_synthetic_index(root / "data", root / "claude", n, dims, seed, corpus)
    import fcntl

    stem = f"synthetic-n{n}-d{dims}-s{seed}"
    where = cache / f"{stem}-v{CACHE_VERSION}-{_store_code_key()}"
    done = where / "index.json"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{where.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  another run is building {where.name}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            info = json.loads(done.read_text())
            log(f"  reusing the synthetic index in {where}")
            return SyntheticIndex(where / "data", where / "claude", **info, reused=True)
        if others := [p.name for p in cache.glob(f"{stem}-*") if p.is_dir() and p != where]:
            log(f"  other versions kept (delete them by hand when unused): {', '.join(others)}")
        shutil.rmtree(where, ignore_errors=True)  # a build that died half-way; we hold its lock
        built = build_synthetic_index(where / "data", where / "claude", n, dims, seed, corpus)
        done.write_text(built.to_json())
        return built


def queries_from(samples: Sequence[tuple[str, str]], count: int, seed: int = 1) -> list[tuple[str, str]]:
    """(query, session_id): 2-4 consecutive words of a line of a stored chunk, and that chunk's session."""
    rng = random.Random(seed)
    found: list[tuple[str, str]] = []
    while len(found) < count:
        text, session_id = rng.choice(samples)
        words = _WORD.findall(rng.choice(text.splitlines()))
        if len(words) < 2:
            continue
        k = rng.randint(2, min(4, len(words)))
        i = rng.randint(0, len(words) - k)
        found.append((" ".join(words[i : i + k]), session_id))
    return found


# -- search without the query embedding ------------------------------------------------------


class PrecomputedEmbedder:
    """Answers embed_one from a table filled before timing, with the vector the stand-in would
    return for that text (its `embed_text`, which drops a Qwen3 query instruction)."""

    def __init__(self, dims: int):
        self.dims = dims
        self.vectors: dict[str, list[float]] = {}
        self.misses = 0

    def add(self, text: str) -> None:
        from ollama_standin import embed_text

        if text not in self.vectors:
            self.vectors[text] = embed_text(text, self.dims)

    async def embed_one(self, text: str) -> list[float]:
        if text not in self.vectors:
            self.misses += 1
            self.add(text)
        return self.vectors[text]

    async def aclose(self) -> None:
        return None


def search_without_embedding(settings: Settings, embedder: PrecomputedEmbedder):
    """A SessionSearch whose every query embedder is `embedder` (Ollama is never asked)."""
    from indexer.service import SessionSearch

    index = SessionSearch(settings)
    index.resources.embedder_for = lambda *args, **kwargs: embedder  # type: ignore[method-assign]
    return index


# -- where the time goes ---------------------------------------------------------------------


class StageTimer:
    """Wraps named product functions with timers for the duration of a `with` block.

    stages: (owner, attribute, label); an attribute the product no longer has is skipped.
    Time is summed per (tag, label), where `tag` is whatever the caller set last. Works for
    functions run in worker threads and for coroutine functions.
    """

    def __init__(self, stages: Sequence[tuple[Any, str, str]]):
        self.stages = [(o, a, label) for o, a, label in stages if hasattr(o, a)]
        self.spent: dict[tuple[str, str], float] = {}
        self.calls: dict[tuple[str, str], int] = {}
        self.tag = ""
        self._originals: list[tuple[Any, str, Any]] = []

    def _add(self, label: str, seconds: float) -> None:
        key = (self.tag, label)
        self.spent[key] = self.spent.get(key, 0.0) + seconds
        self.calls[key] = self.calls.get(key, 0) + 1

    def _wrap(self, label: str, fn: Any) -> Any:
        import functools
        import inspect

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self._add(label, time.perf_counter() - started)
            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - started)
        return timed

    def __enter__(self) -> Self:
        for owner, attr, label in self.stages:
            self._originals.append((owner, attr, vars(owner).get(attr)))  # None: inherited, not owned
            setattr(owner, attr, self._wrap(label, getattr(owner, attr)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._originals):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._originals.clear()

    def ms(self, tag: str, label: str, per: int = 1) -> float:
        return self.spent.get((tag, label), 0.0) * 1e3 / per


# -- MCP over raw pipes ----------------------------------------------------------------------


class McpPipe:
    """A child process spoken to in raw JSON-RPC lines, so every server gets the same client."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], stderr: Any = subprocess.DEVNULL):
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, bufsize=0)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, notify: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        ident = None
        if not notify:
            self._next_id += 1
            ident = message["id"] = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        return ident

    def _line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no answer from the server")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                piece = os.read(fd, 1 << 16)
                if not piece:
                    raise EOFError(f"the server closed stdout (exit {self.proc.poll()})")
                self._buffer += piece
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def answer(self, ident: int, timeout_s: float = 60.0) -> dict[str, Any]:
        """Read lines until the response to ident (notifications and logs on stdout are skipped)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            line = self._line(deadline)
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("id") == ident and ("result" in message or "error" in message):
                return message

    def request(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
        ident = self.send(method, params)
        assert ident is not None
        return self.answer(ident, timeout_s)

    def handshake(self) -> dict[str, Any]:
        """initialize, notifications/initialized, tools/list; returns the tools/list answer."""
        init = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
        self.request("initialize", init)
        self.send("notifications/initialized", notify=True)
        return self.request("tools/list", {})

    def close(self, timeout_s: float = 10.0) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM of the child, in kB."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="bench helpers: `standin` runs the fast Ollama stand-in")
    parser.add_argument("command", choices=["standin"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per /api/embed request")
    args = parser.parse_args(argv)
    return _serve_standin(args.delay)


if __name__ == "__main__":
    sys.exit(main())
