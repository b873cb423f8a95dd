"""A synthetic index of N chunks, written with the product's own store and ledger."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from base import FIXTURES, NATIVE_DIMS, SPEC, log
from environment import settings_for
from report import median

from indexer.chunk import Chunk, chunk_transcript
from indexer.parse import parse_file
from indexer.sources import SourceFile, discover

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_JOINED = re.compile(r"[A-Za-z]\w+(?:-[A-Za-z]\w+)+")  # words joined by hyphens: `spotter-gqc`, not dates


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
        from support.ollama_standin import _token_features, tokenize

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
            vector = np.bincount(
                np.concatenate([b for b, _ in parts]), np.concatenate([w for _, w in parts]), minlength=self.dims
            )
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
            "session_id": session_id,
            "project": project,
            "git_branch": branch,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "is_sidechain": subagent,
            "agent_id": agent_id,
            "first_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "last_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "source_path": str(claude_dir / "projects" / rel_path),
            "line_start": line,
            "line_end": line + lines,
            "kind": "compaction_summary" if rng.random() < 0.02 else "exchange",
            "chunker": SPEC.name,
            "ts_epoch": int(when.timestamp()),
            "window": 0,
            "content_hash": hashlib.sha256(text.encode()).hexdigest()[:32],
        }
        tools = rng.choice(corpus.tools)
        if tools:
            meta["tools"] = tools
        chunk_id = hashlib.sha256(f"{SPEC.name}\0{meta['first_uuid']}\0{0}".encode()).hexdigest()[:32]
        chunks.append(Chunk(chunk_id, text, meta))
        line += lines + 1
    mtime_ns = int((start + timedelta(minutes=3 * size)).timestamp() * 1e9)
    source = SourceFile(
        claude_dir / "projects" / rel_path,
        rel_path,
        session_id,
        agent_id or None,
        None,
        sum(len(c.text) for c in chunks),
        mtime_ns,
    )
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
        data_dir,
        claude_dir,
        made,
        dims,
        samples,
        in_project / made,
        since,
        recent / made,
        median(sizes),
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


def synthetic_index(
    root: Path, n: int, dims: int, seed: int = 0, corpus: Corpus | None = None, cache: Path | None = None
) -> SyntheticIndex:
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


def joined_queries_from(samples: Sequence[tuple[str, str]], count: int, seed: int = 1) -> list[tuple[str, str]]:
    """(query, session_id): a word joined by hyphens from a line of a stored chunk (`spotter-gqc`,
    `verify-deps-before-run`), alone or with the word after it, and that chunk's session."""
    rng = random.Random(seed)
    pool = [(m.group(0), line, sid) for text, sid in samples for line in text.splitlines() for m in _JOINED.finditer(line)]
    if not pool:
        raise ValueError("no word joined by hyphens in the samples")
    found: list[tuple[str, str]] = []
    while len(found) < count:
        joined, line, session_id = rng.choice(pool)
        after = _WORD.findall(line[line.index(joined) + len(joined) :])[:1]
        found.append((" ".join([joined, *after]) if after and rng.random() < 0.5 else joined, session_id))
    return found


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
