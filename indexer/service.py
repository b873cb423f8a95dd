"""SessionSearch: the one public entry. The CLI and the MCP tools both call its
`reindex`, `search` and `info`, so they share every code path.

Which collection is served is recorded in the ledger (`active`). A reindex whose settings
give another index identity (model, dimensions, chunker, document template) builds a new
collection beside it (`building`), resumable after a crash, and switches `active` in one
transaction when the build is complete; until then searches keep using the old one.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from indexer.chunk import Chunk, ChunkerSpec, chunk_transcript, count_tokens
from indexer.config import Settings
from indexer.datadir import describe_data_dir, open_failure, prepare, sqlite_errors
from indexer.embed import Embedder, ModelFacts, OllamaEmbedder, embed_query
from indexer.embed_openai import OpenAIEmbedder
from indexer.errors import EmbedderError, IndexBusy, IndexEmpty, InvalidArgument, OllamaUnreachable, SessionSearchError, first_error
from indexer.folders import check_claude_dir, transcript_folders
from indexer.ledger import CollectionRecord, Ledger
from indexer.lock import WriterLock
from indexer.models import (
    ListSessionsRequest,
    ListSessionsResponse,
    ModelInfo,
    ReadSessionRequest,
    ReindexOptions,
    ReindexReport,
    SearchRequest,
    SearchResponse,
    SessionPage,
    parse_when,
)
from indexer.parse import Transcript, parse_file
from indexer.pipeline import IndexRun, ProgressFn, Tally
from indexer.prompts import template_for
from indexer.redact import Redactor
from indexer.rerank import Reranker
from indexer.searcher_client import SearcherClient
from indexer.retrieve import Retriever
from indexer.search import (
    Candidate,
    StoredHit,
    collapse,
    docs_where,
    fuse,
    matching_projects,
    query_terms,
    single,
    term_weights,
    to_hit,
    within_budget,
)
from indexer.agents import discover_sources, labelled
from indexer.sessions import agent_of, from_excerpts, from_transcript, page, session_page, start_index, transcript_source
from indexer.sources import CLAUDE_CODE, SourceFile
from indexer.store import ChromaStore, IndexIdentity, VectorCollection, describe_store, forget_open_clients
from indexer.writer_process import ChildWrites

log = logging.getLogger(__name__)
STARTUP_DELAY_S = 2.0  # let the MCP handshake finish before the first background reindex
CHANGED_CACHE_S = 30.0
WARM_FROM_FILES = 20  # a run this big loads the model first, and fails fast if it cannot
CHILD_WRITER_FROM_FILES = 20  # a run this big writes Chroma from a child process (about 1 s to start)
SKIP_MARKER = "session-search: skip"
MIN_CANDIDATES = 100  # each ranking's list, for fusion and collapsing
SNIPPET_CONTEXT = 50  # results whose texts tell which query words are rare
NOT_INDEXED = "Nothing is indexed yet. Run `session-search reindex` (or the reindex tool) first."


@dataclass(slots=True)
class _Served:
    """The collection searches use, as of one ledger generation."""

    generation: str | None
    record: CollectionRecord
    identity: IndexIdentity
    collection: VectorCollection
    chunks: int | None = None  # these three are read once per generation
    projects: list[str] | None = None
    filter_values: dict[str, set[str]] | None = None

    def count(self) -> int:
        if self.chunks is None:
            self.chunks = self.collection.count()
        return self.chunks


def _encoded(path: str) -> str:
    """A path as Claude Code names its project folders."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


class SessionSearch:
    """The index of one data dir: reindex it, search it, describe it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.template = template_for(settings.model, settings.prompt_file)
        self.spec = ChunkerSpec(settings.chunker, settings.chunk_tokens, settings.chunk_overlap, settings.tool_output_chars)
        self.redactor = Redactor(settings.redact_patterns)
        self._embedders: dict[tuple[str, str, int | None], Embedder] = {}
        self._ledger: Ledger | None = None
        self._store: ChromaStore | None = None
        self._store_generation: str | None = None
        self._served: _Served | None = None
        self._reindexing = anyio.Lock()
        self._changed: tuple[float, int] | None = None
        self._reranker: Reranker | None = None
        self.searcher: SearcherClient | None = None  # set by `serve`: reads go to the shared searcher

    # -- resources, opened on first use ------------------------------------------------------

    def _embedder_for(self, backend: str, model: str, dimensions: int | None) -> Embedder:
        key = (backend, model, dimensions)
        if key not in self._embedders:
            s = self.settings
            if backend == "openai":
                key_text = s.openai_api_key.get_secret_value() if s.openai_api_key else None
                self._embedders[key] = OpenAIEmbedder(
                    s.openai_base_url or "", model, api_key=key_text, dimensions=dimensions,
                    timeout_s=s.embed_timeout_s, batch_size=s.embed_batch_size,
                )
            else:
                self._embedders[key] = OllamaEmbedder(
                    s.ollama_host, model, dimensions=dimensions, timeout_s=s.embed_timeout_s,
                    num_ctx=s.num_ctx, batch_size=s.embed_batch_size,
                )
        return self._embedders[key]

    @property
    def embedder(self) -> Embedder:
        """The embedder the settings name."""
        return self._embedder_for(self.settings.embed_backend, self.settings.model, self.settings.dimensions)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            path = self.settings.data_dir / "ledger.sqlite"
            prepare(self.settings.data_dir)
            try:
                self._ledger = Ledger(path)
            except sqlite_errors() as exc:
                raise open_failure(path, exc) from None
        return self._ledger

    def _current_store(self) -> ChromaStore:
        """The store, reopened when another process has written since we opened it (chroma#3792)."""
        generation = self.ledger.get_meta("generation")
        if self._store is None or generation != self._store_generation:
            if self._store is not None:
                forget_open_clients()
            self._store = ChromaStore.open(self.settings.data_dir, self.settings.chroma_server)
            self._store_generation, self._served = generation, None
        return self._store

    def _identity(self, facts: ModelFacts) -> IndexIdentity:
        return IndexIdentity(
            self.settings.embed_backend, self.settings.model, facts.dimensions, self.spec.identity,
            self.template.document_hash, facts.fingerprint,
        )

    async def identity(self) -> IndexIdentity:
        """The identity an index built with these settings has; asks Ollama for the dimensions."""
        return self._identity(await self.embedder.facts())

    async def aclose(self) -> None:
        for embedder in self._embedders.values():
            await embedder.aclose()
        if self._reranker is not None:
            await self._reranker.aclose()
        if self._ledger is not None:
            self._ledger.close()
        if self.searcher is not None:
            await self.searcher.aclose()

    # -- choosing files ----------------------------------------------------------------------

    def _sources(self, options: ReindexOptions) -> list[SourceFile]:
        sources = list(discover_sources(self.settings.agent_folders))
        if options.project:  # Claude Code's folders name their project; other agents' files say it only inside
            wanted = _encoded(options.project.rstrip("/"))
            sources = [s for s in sources if s.agent == CLAUDE_CODE and wanted in s.rel_path.split("/", 1)[0]]
            if not sources:
                raise InvalidArgument(f"No transcripts under {self.settings.projects_dir} belong to a project matching {options.project!r}.")
        if options.paths is not None:
            wanted_paths = {str(Path(p).resolve()) for p in options.paths}
            sources = [s for s in sources if str(s.path.resolve()) in wanted_paths]
        if options.since:
            since_ns = int(parse_when(options.since, end_of_day=False).timestamp() * 1e9)
            sources = [s for s in sources if s.mtime_ns >= since_ns]
        return sources

    # -- reindex ---------------------------------------------------------------------------

    async def reindex(self, options: ReindexOptions | None = None, progress: ProgressFn | None = None) -> ReindexReport:
        """Index new and changed transcripts into the index these settings describe.

        Raises:
            IndexBusy: another process holds the writer lock.
            EmbedderError, StoreError: a service failed; what was stored so far is kept.
        """
        options = options or ReindexOptions()
        started = time.monotonic()
        check_claude_dir(self.settings)
        sources = self._sources(options)
        if options.dry_run:
            return await self._dry_run(options, sources, started)
        prepare(self.settings.data_dir)
        async with self._reindexing:
            with WriterLock(self.settings.data_dir) as lock:
                return await self._reindex_locked(options, sources, started, progress, lock.fd)

    async def _reindex_locked(
        self, options: ReindexOptions, sources: list[SourceFile], started: float, progress: ProgressFn | None, lock_fd: int
    ) -> ReindexReport:
        identity = await self.identity()
        if self._nothing_to_do(options, sources, identity):
            # No store opened (no chromadb import) and no new generation (no reader reopens).
            self.ledger.set_meta("last_indexed", datetime.now(UTC).isoformat(timespec="seconds"))
            return ReindexReport(
                full=False, files_scanned=len(sources), files_indexed=0, chunks_added=0, chunks_removed=0,
                chunks_skipped=0, malformed_lines=0, seconds=round(time.monotonic() - started, 3),
                files_gone=self._gone(options, sources),
            )
        nothing_served = self.ledger.get_meta("active") is None
        store = self._current_store()
        # On the event-loop thread, like every ledger write: the ledger's connection is not shared across threads.
        self._drop_orphans(store)
        target, migrating = self._target(store, identity, options.full)
        todo = [s for s in sources if not self.ledger.is_current(target.name, s)]
        if len(todo) >= WARM_FROM_FILES:
            await self.embedder.warm()
        if len(todo) >= CHILD_WRITER_FROM_FILES and store.path is not None:
            target = await anyio.to_thread.run_sync(ChildWrites, target, store.path, lock_fd)
        run = IndexRun(
            collection=target, ledger=self.ledger, embedder=self.embedder, template=self.template, spec=self.spec,
            tool_output_chars=self.settings.tool_output_chars, concurrency=self.settings.embed_concurrency,
            clean=self.redactor.redact_text, skip=self._skipped, progress=progress,
        )
        pruned = switched = pruned_chunks = 0
        carry_over = migrating and not (options.project or options.since or options.paths is not None)
        serve_partial = migrating and nothing_served  # with nothing served yet, part of an index beats none
        try:
            try:
                tally = await run.run(todo)
                await self._purge_skipped(target)
                if options.prune:
                    pruned, pruned_chunks = await self._prune(target)
                if carry_over:
                    await self._carry_over(store, target, run.tally)
            finally:
                with anyio.CancelScope(shield=True):  # a child writer finishes its last write first
                    await anyio.to_thread.run_sync(target.close)
            if carry_over or serve_partial:
                self._switch(store, target.name)
                switched = 1
        finally:
            self._publish(written_here=not isinstance(target, ChildWrites))
        return ReindexReport(
            full=options.full, files_scanned=len(sources), files_indexed=tally.files_indexed, chunks_added=tally.added,
            chunks_removed=tally.removed + pruned_chunks, chunks_skipped=tally.skipped_count, skipped=tally.skipped, files_pruned=pruned,
            malformed_lines=tally.malformed, migrated=bool(switched), first_index=bool(switched) and nothing_served,
            files_gone=self._gone(options, sources), seconds=round(time.monotonic() - started, 3),
        )

    def _gone(self, options: ReindexOptions, sources: list[SourceFile]) -> int:
        """Indexed transcripts Claude Code has deleted since: `--prune` would drop their chunks."""
        served = self.ledger.get_meta("active")
        if not served or options.prune or options.project or options.since or options.paths is not None:
            return 0
        return len(self.ledger.known_sources(served) - {s.rel_path for s in sources})

    def _nothing_to_do(self, options: ReindexOptions, sources: list[SourceFile], identity: IndexIdentity) -> bool:
        """The served index has this identity, no build is pending, and every file is current."""
        if options.full or options.prune or self.ledger.get_meta("building"):
            return False
        active = self.ledger.collection(self.ledger.get_meta("active"))
        if active is None or IndexIdentity.from_json(active.identity) != identity:
            return False
        if self._store_moved() or (self.settings.chroma_url and self._current_store().get(active.name) is None):
            return False  # the served collection is not in the configured store: build it there
        return all(self.ledger.is_current(active.name, s) for s in sources)

    def _target(self, store: ChromaStore, identity: IndexIdentity, full: bool) -> tuple[VectorCollection, bool]:
        """The collection to write: the served one if its identity matches, else one being built."""
        active = self.ledger.collection(self.ledger.get_meta("active"))
        if active and not full and IndexIdentity.from_json(active.identity) == identity:
            found = store.get(active.name)
            if found is not None:
                return found, False
        building = self.ledger.collection(self.ledger.get_meta("building"))
        if building and not full and IndexIdentity.from_json(building.identity) == identity:
            return store.create(building.name, identity), True
        if building:
            self._drop(store, building.name)
        name = identity.new_collection_name()
        self.ledger.add_collection(CollectionRecord(name, identity.to_json(), self.template.format_query("{query}")))
        self.ledger.set_meta("building", name)
        return store.create(name, identity), True

    def _skipped(self, transcript: Transcript) -> bool:
        """Whether a transcript must not be indexed: marked `session-search: skip`, or excluded by a glob."""
        session_id = transcript.messages[0].session_id if transcript.messages else transcript.source.session_hint
        if any(SKIP_MARKER in m.text for m in transcript.messages):
            self.ledger.skip_session(session_id)
            return True
        cwd = next((m.cwd for m in transcript.messages if m.cwd), "")
        names = (transcript.source.rel_path, session_id, cwd)
        excluded = any(fnmatch.fnmatchcase(name, glob) for glob in self.settings.exclude for name in names if name)
        return excluded or session_id in self.ledger.skipped_sessions()

    async def _purge_skipped(self, target: VectorCollection) -> None:
        """Remove what was indexed from other files (subagents) of sessions marked to skip."""
        for session_id in self.ledger.skipped_sessions():
            for rel_path in self.ledger.session_sources(target.name, session_id):
                ids = list(self.ledger.chunk_hashes(target.name, rel_path))
                if not ids:
                    continue
                removable = [i for i in ids if i not in self.ledger.owned_elsewhere(target.name, rel_path, ids)]
                await anyio.to_thread.run_sync(target.delete, removable)
                self.ledger.forget(target.name, rel_path, removable)

    def _drop(self, store: ChromaStore, name: str) -> None:
        store.drop(name)
        self.ledger.drop_collection(name)

    def _drop_orphans(self, store: ChromaStore) -> None:
        """Collections neither served nor being built: left by a crash right after a switch."""
        keep = {self.ledger.get_meta("active"), self.ledger.get_meta("building")}
        for name in self.ledger.collection_names() - keep:
            self._drop(store, name)

    def _switch(self, store: ChromaStore, name: str) -> None:
        old = self.ledger.get_meta("active")
        self.ledger.switch_active(name)
        if old and old != name:
            self._drop(store, old)

    async def _prune(self, target: VectorCollection) -> tuple[int, int]:
        """Remove the chunks of transcripts that no longer exist on disk: (files, chunks) removed."""
        on_disk = {s.rel_path for s in discover_sources(self.settings.agent_folders)}
        gone = sorted(self.ledger.known_sources(target.name) - on_disk)
        chunks = 0
        for rel_path in gone:
            ids = list(self.ledger.chunk_hashes(target.name, rel_path))
            removable = [i for i in ids if i not in self.ledger.owned_elsewhere(target.name, rel_path, ids)]
            await anyio.to_thread.run_sync(target.delete, removable)
            self.ledger.forget(target.name, rel_path, removable)
            chunks += len(removable)
        return len(gone), chunks

    async def _carry_over(self, store: ChromaStore, target: VectorCollection, tally: Tally) -> None:
        """Re-embed into the new index the chunks of deleted transcripts, which exist only in the old one."""
        old = self.ledger.get_meta("active")
        if not old:  # its texts are in the ledger, even when its vectors are in another store or gone
            return
        on_disk = {s.rel_path for s in discover_sources(self.settings.agent_folders)}
        for rel_path in sorted(self.ledger.known_sources(old) - on_disk - self.ledger.known_sources(target.name)):
            docs = self.ledger.docs_for(old, list(self.ledger.chunk_hashes(old, rel_path)))
            chunks = [Chunk(id_, text, json.loads(meta)) for id_, (text, meta) in docs.items()]
            vectors = await self.embedder.embed([self.template.format_document(c.text) for c in chunks])
            kept = [(c, v) for c, v in zip(chunks, vectors, strict=True) if v is not None]
            await anyio.to_thread.run_sync(target.upsert, [c for c, _ in kept], [v for _, v in kept])
            size, mtime_ns = self.ledger.source_row(old, rel_path) or (0, 0)
            source = SourceFile(self.settings.projects_dir / rel_path, rel_path, "", None, None, size, mtime_ns)
            stored = [c for c, _ in kept]
            self.ledger.record(target.name, source, str(stored[0].metadata.get("session_id", "")) if stored else "", stored)
            tally.added += len(kept)

    def _publish(self, *, written_here: bool = True) -> None:
        """Tell readers that the index changed; this process too, when a child process wrote it."""
        generation = uuid.uuid4().hex
        self.ledger.set_meta("generation", generation)
        self.ledger.set_meta("last_indexed", datetime.now(UTC).isoformat(timespec="seconds"))
        self.ledger.set_meta("store", describe_store(self.settings.data_dir, self.settings.chroma_server))
        if written_here:
            self._store_generation = generation  # its own client already sees the writes
        self._served, self._changed = None, None

    async def _dry_run(self, options: ReindexOptions, sources: list[SourceFile], started: float) -> ReindexReport:
        """What a reindex would embed, without asking Ollama or writing anything."""
        has_ledger = (self.settings.data_dir / "ledger.sqlite").exists()  # a dry run creates nothing
        served = self.ledger.get_meta("active") if has_ledger and not options.full else None
        todo = [s for s in sources if not (served and self.ledger.is_current(served, s))]
        chunks = tokens = malformed = 0
        for source in todo:
            transcript = await anyio.to_thread.run_sync(parse_file, source, self.settings.tool_output_chars)
            texts = [c.text for c in chunk_transcript(transcript, self.spec)]
            chunks, tokens, malformed = chunks + len(texts), tokens + sum(map(count_tokens, texts)), malformed + transcript.stats.malformed
        return ReindexReport(
            full=options.full, dry_run=True, files_scanned=len(sources), files_indexed=len(todo), chunks_added=chunks,
            chunks_removed=0, chunks_skipped=0, malformed_lines=malformed, estimated_tokens=tokens,
            seconds=round(time.monotonic() - started, 3),
        )

    async def keep_fresh(self, interval_s: float) -> None:
        """Reindex at start and then every interval_s seconds; never raises, yields to other writers."""
        await anyio.sleep(STARTUP_DELAY_S)
        while True:
            try:
                report = await self.reindex()
                if report.files_indexed:
                    log.info("background reindex: %d files, %d chunks added", report.files_indexed, report.chunks_added)
            except IndexBusy as exc:
                log.info("background reindex skipped: %s", exc)
            except SessionSearchError as exc:
                log.warning("background reindex failed: %s", exc)
            if interval_s <= 0:
                return
            await anyio.sleep(interval_s)

    # -- search ------------------------------------------------------------------------------

    def _serving(self) -> _Served:
        """The served collection, its identity, and the query template that goes with it."""
        store = self._current_store()
        generation = self._store_generation
        if self._served is not None and self._served.generation == generation:
            return self._served
        record = self.ledger.collection(self.ledger.get_meta("active"))
        identity = IndexIdentity.from_json(record.identity) if record else None
        collection = store.get(record.name) if record else None
        if record is not None and identity is not None and collection is None:
            raise IndexEmpty(self._missing_message(record.name))
        if record is None or identity is None or collection is None:
            raise IndexEmpty(self._empty_message())
        self._served = _Served(generation, record, identity, collection)
        return self._served

    def _empty_message(self) -> str:
        building = self.ledger.get_meta("building")
        if building:
            done = self.ledger.source_count(building)
            return f"The first index is being built ({done} files so far); search again when `reindex` finishes."
        return NOT_INDEXED

    def _store_moved(self) -> bool:
        """The index was last written to another store than the one configured (SESSION_SEARCH_CHROMA_URL changed)."""
        recorded = self.ledger.get_meta("store")
        return recorded is not None and recorded != describe_store(self.settings.data_dir, self.settings.chroma_server)

    def _missing_message(self, name: str) -> str:
        where = describe_store(self.settings.data_dir, self.settings.chroma_server)
        if self._store_moved():
            return (
                f"The index was built in {self.ledger.get_meta('store')}, but {where} is configured now "
                "(SESSION_SEARCH_CHROMA_URL). Run `session-search reindex` to build it there, or set the old value back."
            )
        return (
            f"The served index {name} is missing from {where}: its vectors were deleted or damaged. "
            "Run `session-search doctor --repair` to rebuild them from the texts the ledger keeps."
        )

    def _query_text(self, served: _Served, query: str) -> str:
        same_template = served.identity.model == self.settings.model and served.identity.document_template == self.template.document_hash
        return self.template.format_query(query) if same_template else served.record.query_template.replace("{query}", query)

    async def search(self, request: SearchRequest) -> SearchResponse:
        """The exchanges that best match the query, within the request's filters, best first.

        Hybrid fuses vector and keyword rankings; when Ollama cannot embed the query it
        answers from keywords alone and says so.
        """
        if self.searcher is not None:
            return await self.searcher.call("search", request, SearchResponse)
        served = self._serving()  # on the event-loop thread: it may import chromadb (zotero-mcp#485)
        name = served.record.name
        if request.project and served.projects is None:
            served.projects = self.ledger.projects(name)
        projects = matching_projects(request.project, served.projects or []) if request.project else None
        self._check_filters(served, request)
        # The same candidate lists for every page (up to 50 results), so paging neither repeats nor skips.
        wanted = max(MIN_CANDIDATES, (request.offset + request.top_k) * 2)
        docs_filter = docs_where(request, projects)
        retriever = Retriever(self.ledger, served.collection, name, served.count())
        mode, fallback = request.mode, None
        keyword: list[StoredHit] = []
        vector: list[float] | None = None
        nearest: list[tuple[str, float]] = []

        async def rank_keywords() -> None:  # in a worker thread: SQLite leaves the GIL while FTS5 ranks
            nonlocal keyword
            keyword = await anyio.to_thread.run_sync(retriever.keyword, request.query, request.session_id, docs_filter, wanted)

        async def rank_vectors() -> None:  # the query's embedding is awaited meanwhile
            nonlocal vector, nearest, mode, fallback
            try:
                vector = await self._query_vector(served, request.query)
            except EmbedderError as exc:
                if mode == "vector":
                    raise
                mode, fallback = "keyword", f"Keyword results only: the query could not be embedded. {exc}"
                return
            nearest = await retriever.approximate(vector, docs_filter, wanted)

        try:
            async with anyio.create_task_group() as both:
                if mode != "vector":
                    both.start_soon(rank_keywords)
                if mode != "keyword":
                    both.start_soon(rank_vectors)
        except BaseExceptionGroup as failure:
            raise first_error(failure) from None
        vector_hits = await retriever.complete(vector, nearest, keyword, wanted) if vector is not None else []
        if mode == "hybrid":
            ranked = fuse(vector_hits, keyword, request.query)
        else:
            ranked = single(keyword if mode == "keyword" else vector_hits, keyword=mode == "keyword")
        ranked, not_reranked = await self._rerank(request.query, collapse(ranked))
        return self._page(served, request, mode, ranked, " ".join(n for n in (fallback, not_reranked) if n) or None)

    async def _rerank(self, query: str, ranked: list[Candidate]) -> tuple[list[Candidate], str | None]:
        """The optional reranking stage (SESSION_SEARCH_RERANK_URL); a note when it could not run."""
        s = self.settings
        if not s.rerank_url:
            return ranked, None
        if self._reranker is None:
            self._reranker = Reranker(s.rerank_url, s.rerank_model, budget_s=s.rerank_timeout_s, depth=s.rerank_depth)
        return await self._reranker.rerank(query, ranked)

    async def _query_vector(self, served: _Served, query: str) -> list[float]:
        embedder = self._embedder_for(served.identity.backend, served.identity.model, served.identity.dimensions)
        return await embed_query(embedder, self._query_text(served, query), self.settings.query_timeout_s)

    def _check_filters(self, served: _Served, request: SearchRequest) -> None:
        """An unknown filter value is an error, not an empty answer."""
        if request.session_id and not self.ledger.has_session(served.record.name, request.session_id):
            raise InvalidArgument(f"No indexed exchange has the session {request.session_id!r}.")
        for column, value, what in (("git_branch", request.git_branch, "branch"), ("tool", request.tool, "tool")):
            if not value:
                continue
            if served.filter_values is None:
                served.filter_values = self.ledger.filter_values(served.record.name)
            if value not in served.filter_values[column]:
                raise InvalidArgument(f"No indexed exchange has the {what} {value!r}.")
        if request.kind:
            if served.filter_values is None:
                served.filter_values = self.ledger.filter_values(served.record.name)
            kinds = served.filter_values["kind"]
            if request.kind not in kinds:
                raise InvalidArgument(
                    f"This index has no {request.kind!r} chunks: its chunker ({served.identity.chunker}) made only "
                    f"{', '.join(sorted(kinds)) or 'none'}. Use one of those, or leave kind out."
                )

    def _page(self, served: _Served, request: SearchRequest, mode: str, ranked: list[Candidate], fallback: str | None) -> SearchResponse:
        terms = query_terms(request.query)
        page = ranked[request.offset : request.offset + request.top_k]
        weights = term_weights(terms, [c.stored.text for c in ranked[:SNIPPET_CONTEXT]])
        titles = self.ledger.titles(str(c.stored.metadata.get("session_id", "")) for c in page)
        hits = [labelled(to_hit(c, terms, request.query, weights), c.stored.metadata, titles) for c in page]
        hits = within_budget(hits, self.settings.result_tokens)
        more = request.offset + len(hits) < len(ranked)
        notes = [n for n in (fallback, self._note(bool(hits))) if n]
        if len(hits) < len(page):
            notes.append(f"Only {len(hits)} results fit the size budget; ask again with offset={request.offset + len(hits)} for more.")
        return SearchResponse(
            query=request.query, mode=mode, results=hits, total_chunks=served.count(),
            next_offset=request.offset + len(hits) if more else None, note=" ".join(notes) or None,
        )

    async def list_sessions(self, request: ListSessionsRequest) -> ListSessionsResponse:
        """Indexed sessions, latest activity first; from the ledger alone, so it answers without Ollama."""
        from indexer.timeline import list_sessions

        active = self.ledger.get_meta("active")
        if active is None:
            raise IndexEmpty(self._empty_message())
        return list_sessions(self.ledger, active, request, self.settings.result_tokens)

    async def read_session(self, request: ReadSessionRequest) -> SessionPage:
        """Messages of one session around a message or hit, in order; from the index if the transcript is gone."""
        if self.searcher is not None:
            return await self.searcher.call("read_session", request, SessionPage)
        name = self._serving().record.name
        rel_paths = self.ledger.session_sources(name, request.session_id)
        if not rel_paths:
            raise InvalidArgument(f"No indexed session has the id {request.session_id!r}.")
        if request.agent_id and request.agent_id not in {agent_of(r) for r in rel_paths}:
            raise InvalidArgument(f"Session {request.session_id} has no subagent transcript {request.agent_id!r}.")
        rows = self.ledger.session_chunks(name, request.session_id)
        meta = json.loads(rows[0][1]) if rows else {}
        source = transcript_source(self.settings.agent_folders, rel_paths, request.agent_id)
        note = None
        if source is not None:
            messages = await anyio.to_thread.run_sync(
                from_transcript, source, request.agent_id, self.settings.tool_output_chars, self.redactor.redact_text
            )
            meta["source_path"] = str(source.path)
        else:
            messages = from_excerpts(rows, request.agent_id)
            note = "The agent has deleted this transcript (or it is no longer indexed); these are the excerpts the index kept."
        around = self.ledger.chunk_meta(name, request.around) if request.around else None
        around_uuid = json.loads(around)["first_uuid"] if around else request.around
        start = start_index(messages, request, around_uuid)
        shown = page(messages, start, request.limit, self.settings.result_tokens)
        return session_page(request, messages, start, shown, meta, note, self.ledger.titles([request.session_id]).get(request.session_id))

    def _note(self, found: bool) -> str | None:
        notes = [] if found else ["No indexed chunk matches these filters."]
        changed = self.changed_files(max_age_s=CHANGED_CACHE_S)
        if changed:
            notes.append(f"{changed} transcript files changed since the last index; results may miss recent work (the reindex tool updates it).")
        return " ".join(notes) or None

    def changed_files(self, max_age_s: float = 0.0) -> int:
        """Transcript files new or changed since the served index was last updated."""
        now = time.monotonic()
        if self._changed is not None and now - self._changed[0] < max_age_s:
            return self._changed[1]
        served = self.ledger.get_meta("active")
        count = sum(1 for s in discover_sources(self.settings.agent_folders) if not (served and self.ledger.is_current(served, s)))
        self._changed = (now, count)
        return count

    def stored_ids(self) -> dict[str, set[str]]:
        """Chunk ids of the served index in Chroma, in the ledger and in the keyword index: for consistency checks."""
        served = self._serving()
        recorded, keyword = self.ledger.ids(served.record.name)
        return {"vectors": served.collection.ids(), "ledger": recorded, "keywords": keyword}

    # -- info --------------------------------------------------------------------------------

    async def info(self) -> ModelInfo:
        """The model, templates and index state; service failures are reported, not raised."""
        if self.searcher is not None:
            return await self.searcher.call("info", None, ModelInfo)
        facts = version = ollama_error = None
        try:
            with anyio.fail_after(self.settings.query_timeout_s):  # info answers within seconds, whatever Ollama does
                version = await self.embedder.version()
                facts = await self.embedder.facts()
        except TimeoutError:
            ollama_error = str(OllamaUnreachable(f"{self.embedder._describe()} did not answer within {self.settings.query_timeout_s:g} s (SESSION_SEARCH_QUERY_TIMEOUT_S): it is stuck or overloaded. Restart it, or check OLLAMA_HOST."))  # noqa: SLF001
        except EmbedderError as exc:
            ollama_error = str(exc)
        s, t = self.settings, self.template
        state = await self._index_state(facts)
        return ModelInfo(
            model=s.model,
            dimensions=facts.dimensions if facts else s.dimensions,
            native_dimensions=facts.native_dimensions if facts else None,
            context_length=facts.context_length if facts else None,
            model_pulled=True if facts else (False if ollama_error and "ollama pull" in ollama_error else None),
            ollama_host=s.ollama_host, ollama_version=version, ollama_error=ollama_error,
            template_family=t.family, template_source=t.source, query_template=t.format_query("{query}"),
            document_template=t.document, chunker=self.spec.identity, store=describe_store(s.data_dir, s.chroma_server),
            last_indexed=self.ledger.get_meta("last_indexed"), changed_files=self.changed_files(),
            folders=[f"{f.agent}: {f.folder} ({f.problem or f'{f.transcripts} transcripts'})" for f in transcript_folders(s)],
            data_dir=describe_data_dir(s.data_dir),
            agents={name: str(folder) for name, folder in s.agent_folders.items()}, index_process=f"this process, pid {os.getpid()}", **state,
        )

    async def _index_state(self, facts: ModelFacts | None) -> dict[str, object]:
        """Chunks, sessions, the served identity, a migration in progress, or why none can be searched."""
        state: dict[str, object] = {"chunks": 0, "sessions": 0}
        building = self.ledger.collection(self.ledger.get_meta("building"))
        if building:
            target = IndexIdentity.from_json(building.identity)
            total = sum(1 for _ in discover_sources(self.settings.agent_folders))
            what = f"{target.model} at {target.dimensions} dimensions" if target else building.name
            state["migration"] = f"building a new index ({what}): {self.ledger.source_count(building.name)} of {total} files"
        try:
            served = self._serving()
            state["chunks"] = await anyio.to_thread.run_sync(served.collection.count)
        except SessionSearchError as exc:
            state["index_error"] = str(exc)
            return state
        state["sessions"] = self.ledger.session_count(served.record.name)
        recorded, keyword = self.ledger.ids(served.record.name)
        agree = "agree" if state["chunks"] == len(recorded) == len(keyword) else "DISAGREE: run `session-search doctor`"
        state["agreement"] = f"vectors {state['chunks']}, ledger {len(recorded)}, keyword index {len(keyword)}: {agree}"
        state["index_model"], state["index_dimensions"] = served.identity.model, served.identity.dimensions
        if facts is not None and served.identity != self._identity(facts) and not building:
            differences = ", ".join(self._identity(facts).differences(served.identity))
            state["index_error"] = f"The served index was built with {differences}; the next reindex builds a new one beside it."
        return state
