"""The public shapes: what search, reindex and model_info take and return.

The request models are the one source of each tool's arguments: their fields'
descriptions, defaults and bounds become the MCP tools' input schemas and docs and the
CLI's options. The MCP tools publish the responses as their output schemas, and
`session-search ... --json` prints the same objects, so the CLI and the server cannot
drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from indexer.config import AgentName
from indexer.errors import InvalidArgument

MAX_TOP_K = 50
MAX_OFFSET = 500
MAX_READ_MESSAGES = 100
MAX_QUERY_CHARS = 4000
RELATIVE = re.compile(r"^(\d{1,5})\s*([hdwmy])$")
UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}
Mode = Literal["hybrid", "vector", "keyword"]
Kind = Literal["exchange", "compaction_summary", "prompt", "answer", "tool_output"]


def parse_when(value: str, *, end_of_day: bool, now: datetime | None = None) -> datetime:
    """An ISO date or datetime, or a span back from now such as 7d, 2w, 12h, 3m, 1y; UTC when no zone is given.

    A bare date means its start, or its end for `until`.
    """
    text = value.strip()
    if relative := RELATIVE.match(text.lower()):
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) - timedelta(seconds=amount * UNIT_SECONDS[unit])
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO date such as 2026-03-01 or 2026-03-01T14:30:00Z, nor a span such as 7d or 2w"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Request(BaseModel):
    """What a tool or command takes; unknown names are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> Self:
        """The request from raw arguments (a tool call's, the command line's).

        Raises:
            InvalidArgument: naming the first rule the values break, in one line.
        """
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidArgument.from_validation(exc) from None


def bounds(field: FieldInfo) -> tuple[int | None, int | None]:
    """A numeric field's inclusive lower and upper bound, None where it has none."""
    low = next((int(m.ge) for m in field.metadata if hasattr(m, "ge")), None)  # annotated_types.Ge, from Field(ge=)
    high = next((int(m.le) for m in field.metadata if hasattr(m, "le")), None)
    return low, high


def field_doc(field: FieldInfo) -> str:
    """A field's description with its range and default: the line the tool docs and the CLI's help show."""
    parts = [str(field.description).removesuffix(".")]
    low, high = bounds(field)
    if low is not None and high is not None:
        parts.append(f"{low} to {high}")
    if not field.is_required() and field.default is not None and field.default is not False:
        shown = field.default if isinstance(field.default, str) else json.dumps(field.default)  # true, not True
        parts.append(f"default {shown}")
    return "; ".join(parts) + "."


class _Period(Request):
    """`since` / `until` checked once for every request that takes them (subclasses declare the fields)."""

    if TYPE_CHECKING:  # declared by each subclass, where they sit in its field order
        since: str | None
        until: str | None

    @field_validator("since", "until", check_fields=False)
    @classmethod
    def _when(cls, value: str | None) -> str | None:
        if value:
            parse_when(value, end_of_day=False)
        return value or None

    @model_validator(mode="after")
    def _since_before_until(self) -> Self:
        since, until = self.since_epoch(), self.until_epoch()
        if since is not None and until is not None and since > until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    def since_epoch(self) -> int | None:
        return int(parse_when(self.since, end_of_day=False).timestamp()) if self.since else None

    def until_epoch(self) -> int | None:
        return int(parse_when(self.until, end_of_day=True).timestamp()) if self.until else None


class SearchRequest(_Period):
    """A search over indexed sessions."""

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for: a question in plain words, or an exact error, file name or command.",
    )
    top_k: int = Field(10, ge=1, le=MAX_TOP_K, description="How many results to return.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Skip this many results (paging: use next_offset).")
    mode: Mode = Field(
        "hybrid",
        description="hybrid (meaning and words, fused), vector (meaning) or keyword (words: as written, and stemmed for a question in words).",
    )
    project: str | None = Field(
        None, description="Only sessions whose project path contains this; the current working directory narrows to this project."
    )
    session_id: str | None = Field(None, description="Only this session.")
    git_branch: str | None = Field(None, description="Only exchanges on this git branch.")
    since: str | None = Field(None, description="From this ISO date or datetime (2026-03-01) or span back from now (7d, 2w, 3m).")
    until: str | None = Field(None, description="Up to this ISO date or datetime, or span back from now.")
    kind: Kind | None = Field(
        None,
        description="Only this kind of chunk: exchange, compaction_summary, or with the message chunker prompt, answer, tool_output.",
    )
    tool: str | None = Field(None, description="Only exchanges that used this tool, e.g. Bash, Edit or Read.")
    include_subagents: StrictBool = Field(True, description="Include what subagents did; false leaves out subagent transcripts.")
    agent: AgentName | None = Field(None, description="Only sessions of this coding agent: claude-code, codex or gemini-cli.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty")
        return value.strip()


class SearchHit(BaseModel):
    """One matching exchange of a past session."""

    score: float = Field(
        description="Relevance, higher is better: cosine similarity in vector mode, the keyword score relative to the best match (0-1) in keyword mode, the fused score (0-1) in hybrid, the reranker's score for reranked results."
    )
    match: Literal["vector", "keyword", "both"] = Field(description="Which ranking found it.")
    session_id: str
    project: str = Field(description="The working directory of the session.")
    git_branch: str
    timestamp: str = Field(description="When the matched exchange started (ISO 8601, UTC).")
    kind: str = Field(description="exchange, compaction_summary, or for the message chunker prompt/answer/tool_output.")
    agent_id: str = Field(description="The subagent that had this exchange, empty for the main conversation.")
    snippet: str = Field(description="The part of the exchange around what matched; read_session gives the whole.")
    source_path: str
    line_start: int
    line_end: int
    tools: list[str] = []
    chunk_id: str
    resume_command: str = Field(
        description="Run this in a terminal (in the project's folder) to reopen the session in its agent."
    )
    agent: AgentName = Field("claude-code", description="The coding agent the session was held in.")
    title: str | None = Field(None, description="The session's name, when its agent gave it one.")


class SearchResponse(BaseModel):
    """Matches, best first."""

    query: str
    mode: Mode = Field(description="The ranking actually used (hybrid falls back to keyword when Ollama is down).")
    results: list[SearchHit]
    total_chunks: int = Field(description="Chunks in the index.")
    next_offset: int | None = Field(None, description="Pass this as offset to get the next page; None when there is no more.")
    note: str | None = Field(None, description="Something the caller should know about these results.")


class ReadSessionRequest(Request):
    """Which part of a session to read."""

    session_id: str = Field(min_length=1, max_length=200, description="The session to read (a search result's session_id).")
    around: str | None = Field(
        None,
        max_length=200,
        description="A search result's chunk_id, or a message uuid, to centre on; the page starts a few messages before it.",
    )
    offset: int | None = Field(
        None, ge=0, description="Start at this message index instead (paging: use previous_offset / next_offset)."
    )
    limit: int = Field(20, ge=1, le=MAX_READ_MESSAGES, description="Messages per page; a long page is cut to the size budget.")
    agent_id: str | None = Field(
        None, max_length=100, description="Read this subagent's conversation (a result's agent_id) instead of the main one."
    )


class SessionMessage(BaseModel):
    index: int = Field(description="Position in the conversation, from 0.")
    uuid: str
    role: str = Field(description="user, assistant, tool (results), summary (compaction), or excerpt (from the index).")
    timestamp: str
    text: str
    line: int = Field(description="Line in the transcript file.")


class SessionPage(BaseModel):
    """Messages of one session, in order."""

    session_id: str
    project: str
    git_branch: str
    agent_id: str
    source_path: str
    total_messages: int
    messages: list[SessionMessage]
    previous_offset: int | None = Field(description="Pass as offset to read the messages before these.")
    next_offset: int | None = Field(description="Pass as offset to read the messages after these.")
    resume_command: str
    note: str | None = None
    agent: AgentName = Field("claude-code", description="The coding agent the session was held in.")
    title: str | None = Field(None, description="The session's name, when its agent gave it one.")


class ReindexOptions(Request):
    """What a reindex covers."""

    full: StrictBool = Field(
        False, description="Rebuild the whole index from nothing, beside the old one (slow: every session is embedded again)."
    )
    prune: StrictBool = Field(False, description="Drop the chunks of transcripts that no longer exist.")
    project: str | None = Field(None, description="Only transcripts of projects whose path contains this.")
    since: str | None = Field(None, description="Only transcripts modified since this ISO date (or span back from now, 7d).")
    dry_run: StrictBool = Field(False, description="Count files, chunks and tokens; embed nothing.")
    paths: list[str] | None = Field(None, description="Only these transcript files (the Stop hook's session).")

    @field_validator("since")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value:
            parse_when(value, end_of_day=False)
        return value or None


class ReindexReport(BaseModel):
    """What a reindex did."""

    full: bool
    dry_run: bool = False
    files_scanned: int
    files_indexed: int = Field(description="Files that were new or changed and were indexed (or, in a dry run, would be).")
    chunks_added: int = Field(description="Chunks embedded and stored (new or changed).")
    chunks_removed: int
    chunks_skipped: int = Field(description="Chunks the model could not embed (NaN) and that were left out.")
    skipped: list[str] = Field([], description="Where the skipped chunks are (file:lines), at most 50.")
    files_pruned: int = 0
    malformed_lines: int
    estimated_tokens: int | None = Field(None, description="Dry run: tiktoken estimate of what would be embedded.")
    migrated: bool = Field(False, description="A new index was built beside the old one and is now served.")
    first_index: bool = Field(False, description="This was the first index of this data dir, now served (possibly partial).")
    files_gone: int = Field(0, description="Indexed transcripts that no longer exist; `reindex --prune` drops their chunks.")
    seconds: float


class ModelInfo(BaseModel):
    """The embedding model, the templates and the state of the index."""

    model: str
    dimensions: int | None
    native_dimensions: int | None
    context_length: int | None
    model_pulled: bool | None = Field(description="None when Ollama could not be asked.")
    ollama_host: str
    ollama_version: str | None
    ollama_error: str | None
    template_family: str
    template_source: str
    query_template: str
    document_template: str
    chunker: str
    store: str
    chunks: int
    sessions: int
    last_indexed: str | None
    index_model: str | None = Field(None, description="The model the served index was built with.")
    index_dimensions: int | None = None
    migration: str | None = Field(None, description="A new index being built beside the served one, and how far it is.")
    changed_files: int | None = Field(None, description="Transcript files new or changed since the last index.")
    agents: dict[str, str] = Field(
        {}, description="The coding agents whose sessions are indexed, and the folder each is read from."
    )
    index_error: str | None = Field(None, description="Why the index cannot be searched, if it cannot.")
    folders: list[str] = Field([], description="The transcript folders read, per agent, and how many transcripts each holds.")
    data_dir: str | None = Field(None, description="Where the index lives, its size and mode.")
    agreement: str | None = Field(None, description="Chunk counts in the vectors, the ledger and the keyword index.")
    index_process: str | None = Field(
        None, description="Which process holds the index in memory (its pid): this one, or the shared searcher."
    )


MAX_SESSIONS = 100


class ListSessionsRequest(_Period):
    """Which sessions to list, newest first."""

    since: str | None = Field(None, description="Sessions active from this ISO date (2026-03-01) or span back from now (7d, 2w).")
    until: str | None = Field(None, description="Sessions active up to this ISO date or span back from now.")
    project: str | None = Field(
        None,
        max_length=1000,
        description="Only sessions whose project path contains this; the current working directory narrows to this project.",
    )
    git_branch: str | None = Field(None, max_length=300, description="Only sessions with work on this git branch.")
    agent: AgentName | None = Field(None, description="Only sessions of this coding agent: claude-code, codex or gemini-cli.")
    limit: int = Field(20, ge=1, le=MAX_SESSIONS, description="Sessions per page.")
    offset: int = Field(0, ge=0, description="Skip this many sessions (paging: use next_offset).")


class SessionSummary(BaseModel):
    """One past session."""

    session_id: str
    agent: str = Field(description="Which assistant wrote it: claude-code, codex or gemini-cli.")
    project: str = Field(description="The working directory of the session.")
    git_branch: str
    title: str | None = Field(description="The session's title, where the transcript has one.")
    started: str | None = Field(description="Its first indexed exchange (ISO 8601, UTC).")
    ended: str | None = Field(description="Its last indexed exchange (ISO 8601, UTC).")
    exchanges: int = Field(description="Prompts of the main conversation.")
    first_prompt: str = Field(description="The start of the first prompt.")
    subagents: int = Field(description="Subagent conversations the session started.")
    resume_command: str = Field(description="Run this in a terminal to reopen the session.")


class ListSessionsResponse(BaseModel):
    """Sessions, latest activity first."""

    sessions: list[SessionSummary]
    next_offset: int | None = Field(None, description="Pass this as offset to get the next page; None when there is no more.")
    note: str | None = None
