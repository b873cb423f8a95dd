"""One reindex run over a list of changed files: parse → chunk → embed → store → ledger.

Embedding and storing overlap: up to `concurrency` embed requests are in flight while a
single store worker writes finished batches to Chroma; once a file's last batch is stored,
a recorder writes the file to the ledger while the next batch is being stored. Parsing the
next file happens while the previous file's batches are still being embedded.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from indexer.chunk import Chunk, ChunkerSpec
from indexer.embed import Embedder, Vector
from indexer.errors import first_error
from indexer.ledger import Ledger
from indexer.parse import Cleaner
from indexer.planning import SkipFn, plan_file
from indexer.prompts import PromptTemplate
from indexer.sources import SourceFile
from indexer.store import VectorCollection

log = logging.getLogger(__name__)
MAX_LISTED_SKIPS = 50
STORE_BATCH = 256  # chunks per Chroma write when the embedder is ahead of the store
RECORD_BACKLOG = 64  # stored files waiting for the ledger before the store worker waits


@dataclass(frozen=True, slots=True)
class ReindexProgress:
    files_done: int
    files_total: int
    chunks_added: int
    current: str


ProgressFn = Callable[[ReindexProgress], Awaitable[None] | None]


@dataclass(slots=True)
class Tally:
    files_indexed: int = 0
    added: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    malformed: int = 0


@dataclass(slots=True)
class _FilePlan:
    source: SourceFile
    session_id: str
    chunks: list[Chunk]
    stale: list[str]
    malformed: int
    left: int = 0  # fresh chunks not yet stored
    added: int = 0
    nan: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Batch:
    """Embedded chunks on their way to the store, and files with nothing to embed."""

    chunks: list[tuple[_FilePlan, Chunk]]
    vectors: list[Vector | None]
    finished: list[_FilePlan]


def _location(chunk: Chunk) -> str:
    meta = chunk.metadata
    return f"{meta['source_path']}:{meta['line_start']}-{meta['line_end']}"


class IndexRun:
    """Index a list of files into one collection."""

    def __init__(
        self,
        *,
        collection: VectorCollection,
        ledger: Ledger,
        embedder: Embedder,
        template: PromptTemplate,
        spec: ChunkerSpec,
        tool_output_chars: int,
        concurrency: int,
        clean: Cleaner,
        skip: SkipFn,
        progress: ProgressFn | None = None,
    ):
        self.collection, self.ledger, self.embedder = collection, ledger, embedder
        self.template, self.spec, self.tool_output_chars = template, spec, tool_output_chars
        self.concurrency = concurrency
        self.clean, self.skip = clean, skip
        self.progress = progress
        self.tally = Tally()
        self._files_total = 0

    async def run(self, sources: Sequence[SourceFile]) -> Tally:
        self._files_total = len(sources)
        send, receive = anyio.create_memory_object_stream[_Batch](self.concurrency * 2)
        stored, to_record = anyio.create_memory_object_stream[_FilePlan](RECORD_BACKLOG)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._recorder, to_record)
                group.start_soon(self._store_worker, receive, stored)
                await self._produce(sources, send)
        except BaseExceptionGroup as failure:
            raise first_error(failure) from None
        return self.tally

    # -- producing: parse, chunk, embed ----------------------------------------------------

    async def _produce(self, sources: Sequence[SourceFile], send: MemoryObjectSendStream[_Batch]) -> None:
        """Batches fill across files, so many small sessions still make full requests."""
        slots = anyio.Semaphore(self.concurrency)
        pending: list[tuple[_FilePlan, Chunk]] = []
        async with send, anyio.create_task_group() as embedding:
            for source in sources:
                plan, fresh = await self._plan(source)
                plan.left = len(fresh)
                if not fresh:
                    await send.send(_Batch([], [], [plan]))
                pending += [(plan, c) for c in fresh]
                while len(pending) >= self.embedder.batch_size:
                    batch, pending = pending[: self.embedder.batch_size], pending[self.embedder.batch_size :]
                    await slots.acquire()
                    embedding.start_soon(self._embed, batch, send.clone(), slots)
            if pending:
                await slots.acquire()
                embedding.start_soon(self._embed, pending, send.clone(), slots)

    async def _plan(self, source: SourceFile) -> tuple[_FilePlan, list[Chunk]]:
        """Parse and chunk one file, and work out what must be embedded and what removed."""
        planned = await plan_file(source, self.tool_output_chars, self.clean, self.skip, self.spec)
        transcript, chunks, skipped = planned.transcript, planned.chunks, planned.skipped
        known = self.ledger.chunk_hashes(self.collection.name, source.rel_path)
        fresh = [c for c in chunks if known.get(c.id) != c.content_hash]
        ids = {c.id for c in chunks}
        stale = [i for i in known if i not in ids]
        self.ledger.mark_pending(self.collection.name, source.rel_path, fresh)
        session_id = transcript.messages[0].session_id if transcript.messages else source.session_hint
        if transcript.title and not skipped:
            self.ledger.set_title(session_id, transcript.title)
        plan = _FilePlan(source, session_id, chunks, stale, transcript.stats.malformed)
        return plan, fresh

    async def _embed(
        self, batch: list[tuple[_FilePlan, Chunk]], send: MemoryObjectSendStream[_Batch], slots: anyio.Semaphore
    ) -> None:
        try:
            async with send:
                vectors = await self.embedder.embed([self.template.format_document(c.text) for _, c in batch])
                await send.send(_Batch(batch, vectors, []))
        finally:
            slots.release()

    # -- consuming: store and record ----------------------------------------------------------

    async def _store_worker(self, receive: MemoryObjectReceiveStream[_Batch], stored: MemoryObjectSendStream[_FilePlan]) -> None:
        """Writes vectors; files whose every chunk is written go to the recorder, so the next
        write is under way while the ledger records them."""
        async with receive, stored:
            async for first in receive:
                batches = [first, *_waiting(receive, STORE_BATCH - len(first.chunks))]
                pairs = [(pair, vector) for batch in batches for pair, vector in zip(batch.chunks, batch.vectors, strict=True)]
                # A resumed session's copy has its parent's ids: one of each per write, the later wins.
                unique = {chunk.id: (chunk, vector) for (_, chunk), vector in pairs if vector is not None}
                if unique:
                    chunks, vectors = zip(*unique.values(), strict=True)
                    await anyio.to_thread.run_sync(self.collection.upsert, list(chunks), list(vectors))
                finished = [plan for batch in batches for plan in batch.finished]
                for (plan, chunk), vector in pairs:
                    if vector is None:
                        plan.nan.add(chunk.id)
                    else:
                        plan.added += 1
                    plan.left -= 1
                    if plan.left == 0:
                        finished.append(plan)
                for plan in finished:
                    await stored.send(plan)

    async def _recorder(self, stored: MemoryObjectReceiveStream[_FilePlan]) -> None:
        async with stored:
            async for plan in stored:
                await self._finish(plan)

    async def _finish(self, plan: _FilePlan) -> None:
        name, rel_path = self.collection.name, plan.source.rel_path
        removable = self.ledger.removable(name, rel_path, plan.stale)
        await anyio.to_thread.run_sync(self.collection.delete, removable)
        self.ledger.record(
            name, plan.source, plan.session_id, [c for c in plan.chunks if c.id not in plan.nan], removable, complete=not plan.nan
        )
        self._count(plan, len(removable))
        await _report(self.progress, ReindexProgress(self.tally.files_indexed, self._files_total, self.tally.added, rel_path))

    def _count(self, plan: _FilePlan, removed: int) -> None:
        tally = self.tally
        tally.files_indexed += 1
        tally.added += plan.added
        tally.removed += removed
        tally.malformed += plan.malformed
        tally.skipped_count += len(plan.nan)
        skipped = [_location(c) for c in plan.chunks if c.id in plan.nan]
        tally.skipped.extend(skipped[: MAX_LISTED_SKIPS - len(tally.skipped)])


def _waiting(receive: MemoryObjectReceiveStream[_Batch], room: int) -> list[_Batch]:
    """Batches already waiting, up to about `room` chunks: fewer, larger writes to Chroma."""
    found: list[_Batch] = []
    while room > 0:
        try:
            batch = receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
        found.append(batch)
        room -= len(batch.chunks)
    return found


async def _report(progress: ProgressFn | None, update: ReindexProgress) -> None:
    if progress is not None:
        result = progress(update)
        if inspect.isawaitable(result):
            await result
