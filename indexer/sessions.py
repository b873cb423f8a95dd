"""read_session: the conversation around a hit, in order, paged and bounded. Read-only.

Only transcripts the ledger knows are read, and only inside their agent's folder: no
argument names a path. A transcript its agent has deleted is shown from the excerpts
the index kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import anyio

from indexer.agents import agent_named, agent_of_key, resume_command
from indexer.chunk import count_tokens
from indexer.config import AgentName, Settings
from indexer.errors import InvalidArgument
from indexer.ledger import Ledger
from indexer.ledger_docs import ChunkMeta, StoredDoc
from indexer.models import ReadSessionRequest, SessionMessage, SessionPage
from indexer.parse import Cleaner, Message
from indexer.sources import SourceFile

MESSAGE_CHARS = 2000
FOLDER_NAMES = {"claude-code": "Claude Code projects directory", "codex": "Codex home", "gemini-cli": "Gemini CLI tmp directory"}
CONTEXT_BEFORE = 4  # messages shown before the one asked for


def agent_of(rel_path: str) -> str:
    name = Path(rel_path).name.removesuffix(".jsonl")
    return name.removeprefix("agent-") if name.startswith("agent-") else ""


def transcript_source(folders: Mapping[str, Path], rel_paths: Sequence[str], agent_id: str | None) -> SourceFile | None:
    """The session's main transcript, or its subagent's, if it is still on disk (and its agent is still indexed)."""
    for rel_path in rel_paths:
        if agent_of(rel_path) != (agent_id or ""):
            continue
        agent, relative = agent_of_key(rel_path)
        if agent not in folders:
            return None
        root = folders[agent].resolve()
        path = (folders[agent] / relative).resolve()
        if not path.is_relative_to(root):
            raise InvalidArgument(f"That transcript lies outside the {FOLDER_NAMES[agent]}; it is not read.")
        return agent_named(agent).describe(path, root) if path.is_file() else None
    return None


def _capped(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else f"{text[:MESSAGE_CHARS]} …[{len(text) - MESSAGE_CHARS} more chars]"


def from_transcript(source: SourceFile, agent_id: str | None, tool_output_chars: int, clean: Cleaner) -> list[SessionMessage]:
    """The conversation of one stream (main, or one subagent) of a transcript file, redacted like the index."""
    parsed = agent_named(source.agent).parse(source, tool_output_chars, clean).messages
    messages: list[Message] = [m for m in parsed if bool(agent_id) == m.is_sidechain]
    return [
        SessionMessage(index=i, uuid=m.uuid, role=m.role, timestamp=m.timestamp, text=_capped(m.text), line=m.line_start)
        for i, m in enumerate(messages)
    ]


def from_excerpts(docs: Sequence[StoredDoc], agent_id: str | None) -> list[SessionMessage]:
    """A deleted transcript, rebuilt from the indexed chunks, in file order."""
    kept = sorted((d for d in docs if d.meta.agent_id == (agent_id or "")), key=lambda d: (d.meta.line_start, d.meta.window))
    return [
        SessionMessage(
            index=i,
            uuid=d.meta.first_uuid,
            role="excerpt",
            timestamp=d.meta.timestamp,
            text=_capped(d.text),
            line=d.meta.line_start,
        )
        for i, d in enumerate(kept)
    ]


def start_index(messages: Sequence[SessionMessage], request: ReadSessionRequest, around_uuid: str | None) -> int:
    """Where the page starts: the offset asked for, or a little before the message asked for."""
    if request.offset is not None:
        return min(request.offset, max(len(messages) - 1, 0))
    if around_uuid is None:
        return 0
    found = next((m.index for m in messages if m.uuid == around_uuid), None)
    if found is None:
        raise InvalidArgument(
            f"Session {request.session_id} has no message {request.around!r} (a message uuid or a search hit's chunk_id)."
        )
    return max(found - CONTEXT_BEFORE, 0)


def page(messages: Sequence[SessionMessage], start: int, limit: int, budget_tokens: int) -> list[SessionMessage]:
    """Up to `limit` messages from `start` that fit the token budget (at least one)."""
    kept: list[SessionMessage] = []
    used = 0
    for message in messages[start : start + limit]:
        used += count_tokens(message.text) + 20
        if kept and used > budget_tokens:
            break
        kept.append(message)
    return kept


def session_page(
    request: ReadSessionRequest,
    messages: list[SessionMessage],
    start: int,
    shown: list[SessionMessage],
    meta: ChunkMeta,
    note: str | None,
    title: str | None = None,
) -> SessionPage:
    end = start + len(shown)
    return SessionPage(
        session_id=request.session_id,
        project=meta.project,
        git_branch=meta.git_branch,
        agent_id=request.agent_id or "",
        source_path=meta.source_path,
        total_messages=len(messages),
        messages=shown,
        previous_offset=max(start - request.limit, 0) if start > 0 else None,
        next_offset=end if end < len(messages) else None,
        resume_command=resume_command(meta.agent, request.session_id),
        note=note,
        agent=cast(AgentName, meta.agent),
        title=title,  # the ledger holds only known agents' names
    )


async def read_session(
    ledger: Ledger, collection: str, settings: Settings, clean: Cleaner, request: ReadSessionRequest
) -> SessionPage:
    """Messages of one session around a message or hit, in order; from the index if the transcript is gone."""
    rel_paths = ledger.session_sources(collection, request.session_id)
    if not rel_paths:
        raise InvalidArgument(f"No indexed session has the id {request.session_id!r}.")
    if request.agent_id and request.agent_id not in {agent_of(r) for r in rel_paths}:
        raise InvalidArgument(f"Session {request.session_id} has no subagent transcript {request.agent_id!r}.")
    docs = ledger.session_docs(collection, request.session_id)
    meta = docs[0].meta if docs else ChunkMeta()
    source = transcript_source(settings.agent_folders, rel_paths, request.agent_id)
    note = None
    if source is not None:
        messages = await anyio.to_thread.run_sync(from_transcript, source, request.agent_id, settings.tool_output_chars, clean)
        meta = dataclasses.replace(meta, source_path=str(source.path))
    else:
        messages = from_excerpts(docs, request.agent_id)
        note = "The agent has deleted this transcript (or it is no longer indexed); these are the excerpts the index kept."
    around = ledger.chunk_meta(collection, request.around) if request.around else None
    around_uuid = around.first_uuid if around else request.around
    start = start_index(messages, request, around_uuid)
    shown = page(messages, start, request.limit, settings.result_tokens)
    return session_page(request, messages, start, shown, meta, note, ledger.titles([request.session_id]).get(request.session_id))
