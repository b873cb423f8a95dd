"""Which files a reindex looks at, and what each one yields: parsed with redaction, held back
by the skip marker and the exclude globs, chunked. A real run and a dry run both plan here."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from indexer.agents import discover_sources
from indexer.chunk import Chunk, ChunkerSpec, chunk_transcript
from indexer.config import Settings
from indexer.errors import InvalidArgument
from indexer.models import ReindexOptions, parse_when
from indexer.parse import Cleaner, Transcript, parse_file
from indexer.sources import CLAUDE_CODE, SourceFile

SKIP_MARKER = "session-search: skip"
SkipFn = Callable[[Transcript], bool]


class SkipBook(Protocol):
    """Where sessions marked to skip are remembered: the ledger, or a dry run's own set."""

    def skip_session(self, session_id: str) -> bool: ...

    def skipped_sessions(self) -> set[str]: ...


@dataclass(slots=True)
class DrySkips:
    """A dry run's skip book: what the ledger knew, plus the marks this run found, written nowhere."""

    known: set[str]

    def skip_session(self, session_id: str) -> bool:
        new = session_id not in self.known
        self.known.add(session_id)
        return new

    def skipped_sessions(self) -> set[str]:
        return self.known


@dataclass(frozen=True, slots=True)
class PlannedFile:
    transcript: Transcript
    chunks: list[Chunk]
    skipped: bool


def _encoded(path: str) -> str:
    """A path as Claude Code names its project folders."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def choose_sources(settings: Settings, options: ReindexOptions) -> list[SourceFile]:
    """The transcripts a reindex with these options looks at."""
    sources = list(discover_sources(settings.agent_folders))
    if options.project:  # Claude Code's folders name their project; other agents' files say it only inside
        wanted = _encoded(options.project.rstrip("/"))
        sources = [s for s in sources if s.agent == CLAUDE_CODE and wanted in s.rel_path.split("/", 1)[0]]
        if not sources:
            raise InvalidArgument(
                f"No transcripts under {settings.projects_dir} belong to a project matching {options.project!r}."
            )
    if options.paths is not None:
        wanted_paths = {str(Path(p).resolve()) for p in options.paths}
        sources = [s for s in sources if str(s.path.resolve()) in wanted_paths]
    if options.since:
        since_ns = int(parse_when(options.since, end_of_day=False).timestamp() * 1e9)
        sources = [s for s in sources if s.mtime_ns >= since_ns]
    return sources


def skip_rule(exclude: Sequence[str], book: SkipBook) -> SkipFn:
    """Whether a transcript must not be indexed: marked `session-search: skip` (remembered in
    book, so the session's other files are skipped too), or excluded by a glob."""

    def skipped(transcript: Transcript) -> bool:
        session_id = transcript.messages[0].session_id if transcript.messages else transcript.source.session_hint
        if any(SKIP_MARKER in m.text for m in transcript.messages):
            book.skip_session(session_id)
            return True
        cwd = next((m.cwd for m in transcript.messages if m.cwd), "")
        names = (transcript.source.rel_path, session_id, cwd)
        excluded = any(fnmatch.fnmatchcase(name, glob) for glob in exclude for name in names if name)
        return excluded or session_id in book.skipped_sessions()

    return skipped


async def plan_file(source: SourceFile, tool_output_chars: int, clean: Cleaner, skip: SkipFn, spec: ChunkerSpec) -> PlannedFile:
    """Parse one file (redacted), apply the skip rules, and chunk what may be indexed."""
    transcript = await anyio.to_thread.run_sync(parse_file, source, tool_output_chars, clean)
    skipped = skip(transcript)
    chunks = [] if skipped else await anyio.to_thread.run_sync(lambda: list(chunk_transcript(transcript, spec)))
    return PlannedFile(transcript, chunks, skipped)
