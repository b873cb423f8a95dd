"""Wire the stages: sources → parse → chunk → embed → store, and search over the result.

`SessionSearch` is the one public entry: the CLI and the MCP tools both call its
`reindex`, `search` and `info`, so they share every code path.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from indexer.chunk import Chunk, ChunkerSpec, chunk_transcript
from indexer.config import Settings
from indexer.embed import ModelFacts, OllamaEmbedder, Vector
from indexer.errors import EmbedderError, InvalidArgument, SessionSearchError
from indexer.ledger import Ledger, LedgerChunk
from indexer.lock import WriterLock
from indexer.models import ModelInfo, ReindexReport, SearchRequest, SearchResponse
from indexer.parse import parse_file
from indexer.prompts import template_for
from indexer.search import matching_projects, to_hit, where_clause
from indexer.sources import SourceFile, discover
from indexer.store import ChromaStore, IndexIdentity, describe_store, forget_open_clients

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReindexProgress:
    files_done: int
    files_total: int
    chunks_added: int
    current: str


ProgressFn = Callable[[ReindexProgress], Awaitable[None] | None]


@dataclass(slots=True)
class _Tally:
    files_indexed: int = 0
    added: int = 0
    removed: int = 0
    skipped: int = 0
    malformed: int = 0


class SessionSearch:
    """The index of one data dir: reindex it, search it, describe it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.template = template_for(settings.model, settings.prompt_file)
        self.spec = ChunkerSpec(settings.chunker, settings.chunk_tokens, settings.chunk_overlap, settings.tool_output_chars)
        self._embedder: OllamaEmbedder | None = None
        self._ledger: Ledger | None = None
        self._store: ChromaStore | None = None
        self._store_generation: str | None = None
        self._attached: IndexIdentity | None = None

    # -- resources, opened on first use ------------------------------------------------

    @property
    def embedder(self) -> OllamaEmbedder:
        if self._embedder is None:
            s = self.settings
            self._embedder = OllamaEmbedder(
                s.ollama_host, s.model, dimensions=s.dimensions, timeout_s=s.embed_timeout_s,
                num_ctx=s.num_ctx, batch_size=s.embed_batch_size,
            )
        return self._embedder

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.settings.data_dir / "ledger.sqlite")
        return self._ledger

    def _current_store(self) -> ChromaStore:
        """The store, reopened when another process has written since we opened it."""
        generation = self.ledger.get_meta("generation")
        if self._store is None or generation != self._store_generation:
            if self._store is not None:
                forget_open_clients()
            self._store = ChromaStore.open(self.settings.data_dir, self.settings.chroma_url)
            self._store_generation, self._attached = generation, None
        return self._store

    def _identity(self, facts: ModelFacts) -> IndexIdentity:
        return IndexIdentity(self.settings.model, facts.dimensions, self.spec.identity, self.template.document_hash)

    async def identity(self) -> IndexIdentity:
        """The identity an index built with these settings has; asks Ollama for the dimensions."""
        return self._identity(await self.embedder.facts())

    async def aclose(self) -> None:
        if self._embedder is not None:
            await self._embedder.aclose()
        if self._ledger is not None:
            self._ledger.close()

    # -- reindex ---------------------------------------------------------------------

    async def reindex(self, full: bool = False, progress: ProgressFn | None = None) -> ReindexReport:
        """Index new and changed transcripts; with full, rebuild the index from nothing.

        Raises:
            IndexBusy: another reindex holds the writer lock.
            EmbedderError, StoreError: a service failed; what was stored so far stays.
        """
        started = time.monotonic()
        with WriterLock(self.settings.data_dir):
            identity = await self.identity()
            store = self._current_store()
            await anyio.to_thread.run_sync(lambda: store.create_or_attach(identity, reset=full))
            self._attached = identity
            if full:
                self.ledger.clear()
            sources = list(discover(self.settings.projects_dir))
            todo = [s for s in sources if not self.ledger.is_current(s)]
            tally = _Tally()
            try:
                for done, source in enumerate(todo, start=1):
                    await self._index_source(store, source, tally)
                    await _report(progress, ReindexProgress(done, len(todo), tally.added, source.rel_path))
            finally:
                self._publish()
        return ReindexReport(
            full=full, files_scanned=len(sources), files_indexed=tally.files_indexed,
            chunks_added=tally.added, chunks_removed=tally.removed, chunks_skipped=tally.skipped,
            malformed_lines=tally.malformed, seconds=round(time.monotonic() - started, 3),
        )

    def _publish(self) -> None:
        """Tell readers in other processes that the index changed."""
        generation = uuid.uuid4().hex
        self.ledger.set_meta("generation", generation)
        self.ledger.set_meta("last_indexed", datetime.now(UTC).isoformat(timespec="seconds"))
        self._store_generation = generation

    async def _index_source(self, store: ChromaStore, source: SourceFile, tally: _Tally) -> None:
        transcript = await anyio.to_thread.run_sync(parse_file, source, self.settings.tool_output_chars)
        chunks = await anyio.to_thread.run_sync(lambda: list(chunk_transcript(transcript, self.spec)))
        known = self.ledger.chunk_hashes(source.rel_path)
        fresh = [c for c in chunks if known.get(c.id) != c.content_hash]
        stale = sorted(set(known) - {c.id for c in chunks})
        vectors = await self.embedder.embed([self.template.format_document(c.text) for c in fresh])
        stored = [(c, v) for c, v in zip(fresh, vectors, strict=True) if v is not None]
        skipped = {c.id for c, v in zip(fresh, vectors, strict=True) if v is None}
        await anyio.to_thread.run_sync(lambda: _write(store, stale, stored))
        session_id = transcript.messages[0].session_id if transcript.messages else source.session_hint
        self.ledger.record(source, session_id, [_ledger_entry(c) for c in chunks if c.id not in skipped])
        tally.files_indexed += 1
        tally.added += len(stored)
        tally.removed += len(stale)
        tally.skipped += len(skipped)
        tally.malformed += transcript.stats.malformed

    # -- search ----------------------------------------------------------------------

    async def _readable_store(self) -> ChromaStore:
        store = self._current_store()
        identity = await self.identity()
        if self._attached != identity:
            await anyio.to_thread.run_sync(store.attach, identity)
            self._attached = identity
        return store

    async def search(self, request: SearchRequest) -> SearchResponse:
        """The chunks closest to the query, best first, within the request's filters."""
        store = await self._readable_store()
        projects = matching_projects(request.project, self.ledger.projects()) if request.project else None
        if request.session_id and not self.ledger.has_session(request.session_id):
            raise InvalidArgument(f"No indexed session has the id {request.session_id!r}.")
        where = where_clause(request, projects)
        vector = await self.embedder.embed_one(self.template.format_query(request.query))
        stored = await anyio.to_thread.run_sync(store.query, vector, request.top_k, where)
        total = await anyio.to_thread.run_sync(store.count)
        note = None if stored else "No indexed chunk matches these filters."
        return SearchResponse(query=request.query, results=[to_hit(s) for s in stored], total_chunks=total, note=note)

    # -- info ------------------------------------------------------------------------

    async def info(self) -> ModelInfo:
        """The model, templates and index state; service failures are reported, not raised."""
        facts = version = ollama_error = None
        try:
            version = await self.embedder.version()
            facts = await self.embedder.facts()
        except EmbedderError as exc:
            ollama_error = str(exc)
        chunks, index_error = await self._index_state(facts)
        s, t = self.settings, self.template
        return ModelInfo(
            model=s.model,
            dimensions=facts.dimensions if facts else s.dimensions,
            native_dimensions=facts.native_dimensions if facts else None,
            context_length=facts.context_length if facts else None,
            model_pulled=True if facts else (False if isinstance(ollama_error, str) and "ollama pull" in ollama_error else None),
            ollama_host=s.ollama_host, ollama_version=version, ollama_error=ollama_error,
            template_family=t.family, template_source=t.source, query_template=t.format_query("{query}"),
            document_template=t.document, chunker=self.spec.identity, store=describe_store(s.data_dir, s.chroma_url),
            chunks=chunks, sessions=self.ledger.session_count(), last_indexed=self.ledger.get_meta("last_indexed"),
            index_error=index_error,
        )

    async def _index_state(self, facts: ModelFacts | None) -> tuple[int, str | None]:
        """Chunks in the stored index, and why it cannot be searched with these settings, if so."""
        try:
            store = self._current_store()
            existing = await anyio.to_thread.run_sync(store.existing)
        except SessionSearchError as exc:
            return 0, str(exc)
        if existing is None:
            return 0, "Nothing is indexed yet. Run `session-search reindex` (or the reindex tool) first."
        found, chunks = existing
        if facts is None or found is None:
            return chunks, None if found else "The index was not made by this version of session-search."
        expected = self._identity(facts)
        if found != expected:
            return chunks, f"The index was built with {', '.join(expected.differences(found))}: run `session-search reindex --full`."
        return chunks, None


def _ledger_entry(chunk: Chunk) -> LedgerChunk:
    return LedgerChunk(chunk.id, chunk.content_hash, str(chunk.metadata["session_id"]), str(chunk.metadata["project"]))


def _write(store: ChromaStore, stale: list[str], stored: list[tuple[Chunk, Vector]]) -> None:
    store.delete(stale)
    store.upsert([c for c, _ in stored], [v for _, v in stored])


async def _report(progress: ProgressFn | None, update: ReindexProgress) -> None:
    if progress is not None:
        result = progress(update)
        if inspect.isawaitable(result):
            await result
