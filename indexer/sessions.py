"""read_session: the conversation around a hit, in order, paged and bounded. Read-only.

Only transcripts the ledger knows are read, and only inside their agent's folder: no
argument names a path. A transcript its agent has deleted is shown from the excerpts
the index kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from indexer.agents import agent_named, agent_of_key, resume_command
from indexer.chunk import count_tokens
from indexer.errors import InvalidArgument
from indexer.models import ReadSessionRequest, SessionMessage, SessionPage
from indexer.parse import Cleaner, Message
from indexer.sources import CLAUDE_CODE, SourceFile

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


def from_excerpts(rows: Sequence[tuple[str, str]], agent_id: str | None) -> list[SessionMessage]:
    """A deleted transcript, rebuilt from the indexed chunks, in file order."""
    chunks = [(text, json.loads(meta)) for text, meta in rows]
    chunks = [(t, m) for t, m in chunks if (m.get("agent_id") or "") == (agent_id or "")]
    chunks.sort(key=lambda c: (c[1].get("line_start", 0), c[1].get("window", 0)))
    return [
        SessionMessage(index=i, uuid=str(m.get("first_uuid", "")), role="excerpt", timestamp=str(m.get("timestamp", "")),
                       text=_capped(t), line=int(m.get("line_start", 0)))
        for i, (t, m) in enumerate(chunks)
    ]


def start_index(messages: Sequence[SessionMessage], request: ReadSessionRequest, around_uuid: str | None) -> int:
    """Where the page starts: the offset asked for, or a little before the message asked for."""
    if request.offset is not None:
        return min(request.offset, max(len(messages) - 1, 0))
    if around_uuid is None:
        return 0
    found = next((m.index for m in messages if m.uuid == around_uuid), None)
    if found is None:
        raise InvalidArgument(f"Session {request.session_id} has no message {request.around!r} (a message uuid or a search hit's chunk_id).")
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
    request: ReadSessionRequest, messages: list[SessionMessage], start: int, shown: list[SessionMessage], meta: dict[str, object],
    note: str | None, title: str | None = None,
) -> SessionPage:
    end = start + len(shown)
    agent = str(meta.get("agent") or CLAUDE_CODE)
    return SessionPage(
        session_id=request.session_id, project=str(meta.get("project", "")), git_branch=str(meta.get("git_branch", "")),
        agent_id=request.agent_id or "", source_path=str(meta.get("source_path", "")), total_messages=len(messages),
        messages=shown, previous_offset=max(start - request.limit, 0) if start > 0 else None,
        next_offset=end if end < len(messages) else None, resume_command=resume_command(agent, request.session_id), note=note,
        agent=agent, title=title,
    )
