"""A reindex run, and its dry run: plan the files, write the collection the catalog names,
remove what is gone or marked to skip, carry over deleted transcripts into a new index,
switch and publish."""

from __future__ import annotations

import logging
import time

import anyio

from indexer.agents import discover_sources
from indexer.catalog import Catalog
from indexer.chunk import count_tokens
from indexer.datadir import prepare
from indexer.errors import IndexBusy, SessionSearchError
from indexer.folders import check_claude_dir
from indexer.ledger import Ledger
from indexer.lock import WriterLock
from indexer.models import ReindexOptions, ReindexReport
from indexer.pipeline import IndexRun, ProgressFn, Tally
from indexer.planning import DrySkips, choose_sources, plan_file, skip_rule
from indexer.reindex_process import reindex_in_child
from indexer.resources import Resources
from indexer.sources import SourceFile
from indexer.store import IndexIdentity, VectorCollection
from indexer.writer_process import ChildWrites

log = logging.getLogger(__name__)
STARTUP_DELAY_S = 2.0  # let the MCP handshake finish before the first background reindex
WARM_FROM_FILES = 20  # a run this big loads the model first, and fails fast if it cannot
CHILD_WRITER_FROM_FILES = 20  # a run this big writes Chroma from a child process (about 1 s to start)


def _narrowed(options: ReindexOptions) -> bool:
    """The run looks at some transcripts only (a project, a time, given paths)."""
    return bool(options.project or options.since or options.paths is not None)


class Reindexer:
    """Runs reindexes of one data dir, one at a time in this process (and across processes, by the writer lock)."""

    def __init__(self, resources: Resources, catalog: Catalog):
        self.resources, self.catalog = resources, catalog
        self._reindexing = anyio.Lock()
        # Set where reads go to the shared searcher: such a process must not load the index to write either.
        self.writes_in_child = False

    @property
    def ledger(self) -> Ledger:
        return self.resources.ledger

    async def reindex(self, options: ReindexOptions, progress: ProgressFn | None = None) -> ReindexReport:
        started = time.monotonic()
        settings = self.resources.settings
        check_claude_dir(settings)
        sources = choose_sources(settings, options)
        if options.dry_run:
            return await self._dry_run(options, sources, started)
        prepare(settings.data_dir)
        async with self._reindexing:
            with WriterLock(settings.data_dir) as lock:
                return await self._locked(options, sources, started, progress, lock.fd)

    async def _locked(
        self, options: ReindexOptions, sources: list[SourceFile], started: float, progress: ProgressFn | None, lock_fd: int
    ) -> ReindexReport:
        identity = await self.resources.identity()
        if self._nothing_to_do(options, sources, identity):
            # No store opened (no chromadb import) and no new generation (no reader reopens).
            self.ledger.stamp_indexed()
            return ReindexReport(
                full=False,
                files_scanned=len(sources),
                files_indexed=0,
                chunks_added=0,
                chunks_removed=0,
                chunks_skipped=0,
                malformed_lines=0,
                seconds=round(time.monotonic() - started, 3),
                files_gone=self._gone(options, sources),
            )
        nothing_served = self.ledger.active is None
        store = self.catalog.store()
        # On the event-loop thread, like every ledger write: the ledger's connection is not shared across threads.
        self.catalog.drop_orphans(store)
        target, migrating = self.catalog.target(store, identity, options.full)
        todo = [s for s in sources if not self.ledger.is_current(target.name, s)]
        r, settings = self.resources, self.resources.settings
        if len(todo) >= WARM_FROM_FILES:
            await r.embedder.warm()
        if (len(todo) >= CHILD_WRITER_FROM_FILES or self.writes_in_child) and store.path is not None:
            target = await anyio.to_thread.run_sync(ChildWrites, target, store.path, lock_fd)
        run = IndexRun(
            collection=target,
            ledger=self.ledger,
            embedder=r.embedder,
            template=r.template,
            spec=r.spec,
            tool_output_chars=settings.tool_output_chars,
            concurrency=settings.embed_concurrency,
            clean=r.redactor.redact_text,
            skip=skip_rule(settings.exclude, self.ledger),
            progress=progress,
        )
        pruned = switched = pruned_chunks = 0
        carry_over = migrating and not _narrowed(options)
        serve_partial = migrating and nothing_served  # with nothing served yet, part of an index beats none
        try:
            try:
                tally = await run.run(todo)
                await self._purge_skipped(target)
                if options.prune:
                    pruned, pruned_chunks = await self._prune(target)
                if carry_over:
                    await self._carry_over(target, run.tally)
            finally:
                with anyio.CancelScope(shield=True):  # a child writer finishes its last write first
                    await anyio.to_thread.run_sync(target.close)
            if carry_over or serve_partial:
                self.catalog.switch(store, target.name)
                switched = 1
        finally:
            self.catalog.publish(written_here=not isinstance(target, ChildWrites))
        return ReindexReport(
            full=options.full,
            files_scanned=len(sources),
            files_indexed=tally.files_indexed,
            chunks_added=tally.added,
            chunks_removed=tally.removed + pruned_chunks,
            chunks_skipped=tally.skipped_count,
            skipped=tally.skipped,
            files_pruned=pruned,
            malformed_lines=tally.malformed,
            migrated=bool(switched),
            first_index=bool(switched) and nothing_served,
            files_gone=self._gone(options, sources),
            seconds=round(time.monotonic() - started, 3),
        )

    def _gone(self, options: ReindexOptions, sources: list[SourceFile]) -> int:
        """Indexed transcripts Claude Code has deleted since: `--prune` would drop their chunks."""
        served = self.ledger.active
        if not served or options.prune or _narrowed(options):
            return 0
        return len(self.ledger.known_sources(served) - {s.rel_path for s in sources})

    def _nothing_to_do(self, options: ReindexOptions, sources: list[SourceFile], identity: IndexIdentity) -> bool:
        """The served index has this identity, no build is pending, and every file is current."""
        if options.full or options.prune or self.ledger.building:
            return False
        active = self.catalog.serves(identity)
        if active is None:
            return False
        if self.catalog.store_moved() or (self.resources.settings.chroma_url and self.catalog.store().get(active.name) is None):
            return False  # the served collection is not in the configured store: build it there
        return all(self.ledger.is_current(active.name, s) for s in sources)

    def _on_disk(self) -> set[str]:
        return {s.rel_path for s in discover_sources(self.resources.settings.agent_folders)}

    async def _forget(self, target: VectorCollection, rel_path: str) -> int:
        """Remove one transcript from the collection: the chunks no other transcript also produces. How many."""
        removable = self.ledger.removable(target.name, rel_path, list(self.ledger.chunk_hashes(target.name, rel_path)))
        await anyio.to_thread.run_sync(target.delete, removable)
        self.ledger.forget(target.name, rel_path, removable)
        return len(removable)

    async def _purge_skipped(self, target: VectorCollection) -> None:
        """Remove what was indexed from other files (subagents) of sessions marked to skip."""
        for session_id in self.ledger.skipped_sessions():
            for rel_path in self.ledger.session_sources(target.name, session_id):
                if self.ledger.chunk_hashes(target.name, rel_path):
                    await self._forget(target, rel_path)

    async def _prune(self, target: VectorCollection) -> tuple[int, int]:
        """Remove the chunks of transcripts that no longer exist on disk: (files, chunks) removed."""
        gone = sorted(self.ledger.known_sources(target.name) - self._on_disk())
        chunks = 0
        for rel_path in gone:
            chunks += await self._forget(target, rel_path)
        return len(gone), chunks

    async def _carry_over(self, target: VectorCollection, tally: Tally) -> None:
        """Re-embed into the new index the chunks of deleted transcripts, which exist only in the old one."""
        old = self.ledger.active
        if not old:  # its texts are in the ledger, even when its vectors are in another store or gone
            return
        r = self.resources
        for rel_path in sorted(self.ledger.known_sources(old) - self._on_disk() - self.ledger.known_sources(target.name)):
            docs = self.ledger.docs_for(old, list(self.ledger.chunk_hashes(old, rel_path)))
            chunks = [doc.chunk() for doc in docs.values()]
            vectors = await r.embedder.embed([r.template.format_document(c.text) for c in chunks])
            stored = [c for c, v in zip(chunks, vectors, strict=True) if v is not None]
            await anyio.to_thread.run_sync(target.upsert, stored, [v for v in vectors if v is not None])
            size, mtime_ns = self.ledger.source_row(old, rel_path) or (0, 0)
            source = SourceFile(r.settings.projects_dir / rel_path, rel_path, "", None, None, size, mtime_ns)
            self.ledger.record(target.name, source, str(stored[0].metadata.get("session_id", "")) if stored else "", stored)
            tally.added += len(stored)

    async def _dry_run(self, options: ReindexOptions, sources: list[SourceFile], started: float) -> ReindexReport:
        """What a reindex would embed, without asking the embedder or writing anything: the files
        go through the same planning (redaction, skip marker, exclude globs) as a real run's."""
        r, settings = self.resources, self.resources.settings
        has_ledger = r.has_ledger  # a dry run creates nothing
        served = self.ledger.active if has_ledger and not options.full else None
        todo = [s for s in sources if not (served and self.ledger.is_current(served, s))]
        skip = skip_rule(settings.exclude, DrySkips(self.ledger.skipped_sessions() if has_ledger else set()))
        chunks = tokens = malformed = 0
        for source in todo:
            planned = await plan_file(source, settings.tool_output_chars, r.redactor.redact_text, skip, r.spec)
            texts = [c.text for c in planned.chunks]
            chunks, tokens, malformed = (
                chunks + len(texts),
                tokens + sum(map(count_tokens, texts)),
                malformed + planned.transcript.stats.malformed,
            )
        return ReindexReport(
            full=options.full,
            dry_run=True,
            files_scanned=len(sources),
            files_indexed=len(todo),
            chunks_added=chunks,
            chunks_removed=0,
            chunks_skipped=0,
            malformed_lines=malformed,
            estimated_tokens=tokens,
            seconds=round(time.monotonic() - started, 3),
        )

    async def keep_fresh(self, interval_s: float) -> None:
        """Reindex at start and then every interval_s seconds; never raises, yields to other writers.
        A process that must not load the index (`writes_in_child`) runs each round in a child."""
        await anyio.sleep(STARTUP_DELAY_S)
        while True:
            try:
                if self.writes_in_child:
                    report = await reindex_in_child(self.resources.settings)
                else:
                    report = await self.reindex(ReindexOptions())
                if report.files_indexed:
                    log.info("background reindex: %d files, %d chunks added", report.files_indexed, report.chunks_added)
            except IndexBusy as exc:
                log.info("background reindex skipped: %s", exc)
            except SessionSearchError as exc:
                log.warning("background reindex failed: %s", exc)
            if interval_s <= 0:
                return
            await anyio.sleep(interval_s)
