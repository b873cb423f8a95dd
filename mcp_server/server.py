"""The MCP server: thin tools over indexer.SessionSearch, served over stdio.

Nothing here indexes or searches; every tool body calls the same SessionSearch method
the CLI calls. Only protocol goes to stdout: logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, TypeVar

import anyio

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, StrictBool, ValidationError

from indexer.config import Settings, load_settings
from indexer.errors import SessionSearchError
from indexer.models import (
    MAX_OFFSET,
    MAX_READ_MESSAGES,
    MAX_TOP_K,
    MAX_SESSIONS,
    AgentName,
    Kind,
    ListSessionsRequest,
    ListSessionsResponse,
    Mode,
    ModelInfo,
    ReadSessionRequest,
    ReindexOptions,
    ReindexReport,
    SearchRequest,
    SearchResponse,
    SessionPage,
)
from indexer.pipeline import ReindexProgress
from indexer.searcher_client import SearcherClient
from indexer.service import SessionSearch
from indexer.render import render_info, render_report, render_search, render_session, render_sessions

log = logging.getLogger("session_search.server")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

INSTRUCTIONS = """\
session-search finds what the user and you did in past Claude Code, Codex and Gemini CLI sessions: prompts, \
answers, commands, tool output and compaction summaries, with session id, project, branch and date.
Use `search` when the user refers to earlier work ("what did we decide about…", "how did I fix…", \
"have I seen this error before", "find the session where…") or when an error, file or decision \
may have come up before. Quote exact strings (error messages, file names, flags) in the query.
Filters: `project` (a path or part of one; the current working directory is a good default), \
`session_id`, `git_branch`, `since`/`until` (ISO dates or 7d, 2w), `kind`, `tool`, `include_subagents`, `agent`. \
Results are snippets: call `read_session` with the session_id and the hit's chunk_id as `around` to read \
the conversation around it, and page with offset. Each result gives its agent's resume command \
(`claude --resume <session_id>` for Claude Code) to reopen the session. Use `list_sessions`, not `search`, for questions about time rather than a \
topic ("what did we work on yesterday", "my sessions on this repo this month"): it lists sessions newest \
first with title, dates and first prompt, filtered by since/until, project, git_branch. `model_info` tells whether the index is built and current; `reindex` updates it."""


@dataclass(slots=True)
class AppContext:
    index: SessionSearch


WAITING = (
    "session-search: MCP server waiting for an MCP client on stdin/stdout. Claude Code starts it by itself; "
    "Ctrl-C or Ctrl-D ends it."
)
STOP_GRACE_S = 1.0  # after a signal: time for a clean shutdown before the process exits regardless


def _version() -> str:
    try:
        return version("session-search")
    except PackageNotFoundError:
        return "unknown"


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    got = first.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) and len(repr(got)) <= 60 else ""
    message = "is required" if first["type"] == "missing" else first["msg"]
    return f"{where}: {message}{shown}" if where else f"{message}{shown}"


class _Server(MCPServer):
    """MCPServer whose argument errors are one line, and whose crashes still say what to do."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = exc.__cause__
            raise UnexpectedToolError(
                f"{name} failed unexpectedly ({type(cause).__name__}: {str(cause)[:200]}). "
                "Run `session-search doctor` in a terminal to see what is wrong; the server's stderr log has the details."
            ) from cause
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Invalid argument to {name}: {_one_line(exc.__cause__)}. Fix it and call again.") from exc.__cause__
            raise


def _validated(model: type[M], **fields: object) -> M:
    """The tool's arguments as the request model; a rule they break becomes a one-line tool error."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise ToolError(_one_line(exc)) from None


async def _tool_call(call: Awaitable[T]) -> T:
    """Our errors become ToolErrors: the model reads the message and the server stays up."""
    try:
        return await call
    except SessionSearchError as exc:
        raise ToolError(str(exc)) from None


def _result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json"))


def _index(ctx: Context) -> SessionSearch:
    return ctx.request_context.lifespan_context.index


def build_server(settings: Settings) -> MCPServer:
    """The server with its tools, over one SessionSearch for settings."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppContext]:
        async with SessionSearch(settings) as index, anyio.create_task_group() as background:
            if settings.shared_searcher:  # every window's server on this data dir shares one copy of the index
                index.searcher = SearcherClient(settings)
            if settings.refresh_minutes > 0:
                background.start_soon(index.keep_fresh, settings.refresh_minutes * 60)
            yield AppContext(index)
            background.cancel_scope.cancel()

    server = _Server("session-search", version=_version(), instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.tool(
        title="Search past Claude Code sessions",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    async def search(
        query: Annotated[str, Field(description="What to look for: a question, or an exact error, file name or command.")],
        ctx: Context,
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="How many results to return.")] = 10,
        offset: Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Skip this many results (paging: use next_offset).")] = 0,
        mode: Annotated[Mode, Field(description="hybrid (default), vector (meaning) or keyword (exact words).")] = "hybrid",
        project: Annotated[str | None, Field(description="Only sessions whose project path contains this.")] = None,
        session_id: Annotated[str | None, Field(description="Only this session.")] = None,
        git_branch: Annotated[str | None, Field(description="Only exchanges on this git branch.")] = None,
        since: Annotated[str | None, Field(description="From this ISO date (2026-03-01) or span back from now (7d, 2w).")] = None,
        until: Annotated[str | None, Field(description="Up to this ISO date or span back from now.")] = None,
        kind: Annotated[Kind | None, Field(description="Only this kind of chunk.")] = None,
        tool: Annotated[str | None, Field(description="Only exchanges that used this tool, e.g. Bash or Edit.")] = None,
        include_subagents: Annotated[StrictBool, Field(description="Include what subagents did.")] = True,
        agent: Annotated[AgentName | None, Field(description="Only sessions of this coding agent.")] = None,
    ) -> Annotated[CallToolResult, SearchResponse]:
        """Search everything done in past Claude Code sessions, best match first.

        Args:
            query: A question in plain words, or an exact string to find.
            top_k: Number of results, 1 to 50.
            offset: Results to skip, for the next page.
            mode: hybrid, vector or keyword.
            project: Part of a project path; the current working directory narrows to this project.
            session_id: Restrict to one session.
            git_branch: Restrict to one branch.
            since: ISO date or datetime, or 7d / 2w / 3m back from now.
            until: ISO date or datetime, or a span back from now.
            kind: exchange, compaction_summary, prompt, answer or tool_output.
            tool: A tool name such as Bash, Edit, Read.
            include_subagents: False to leave out subagent transcripts.
            agent: claude-code, codex or gemini-cli.
        """
        request = _validated(
            SearchRequest, query=query, top_k=top_k, offset=offset, mode=mode, project=project, session_id=session_id,
            git_branch=git_branch, since=since, until=until, kind=kind, tool=tool, include_subagents=include_subagents,
            agent=agent,
        )
        response = await _tool_call(_index(ctx).search(request))
        return _result(response, render_search(response))

    @server.tool(
        title="Read a past session",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    async def read_session(
        session_id: Annotated[str, Field(description="The session to read (a search result's session_id).")],
        ctx: Context,
        around: Annotated[str | None, Field(description="A search result's chunk_id, or a message uuid, to centre on.")] = None,
        offset: Annotated[int | None, Field(ge=0, description="Start at this message index (paging).")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_READ_MESSAGES, description="How many messages at most.")] = 20,
        agent_id: Annotated[str | None, Field(description="Read this subagent's conversation instead of the main one.")] = None,
    ) -> Annotated[CallToolResult, SessionPage]:
        """Read the conversation around a search hit, in order, with roles and timestamps.

        Args:
            session_id: The session id from a search result.
            around: The hit's chunk_id (or a message uuid); the page starts a few messages before it.
            offset: Message index to start at; use previous_offset / next_offset to page.
            limit: Messages per page, 1 to 100; long pages are cut to the size budget.
            agent_id: A subagent's id (from a result's agent_id) to read its conversation.
        """
        request = _validated(ReadSessionRequest, session_id=session_id, around=around, offset=offset, limit=limit, agent_id=agent_id)
        session = await _tool_call(_index(ctx).read_session(request))
        return _result(session, render_session(session))

    @server.tool(
        title="List past sessions, newest first",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    async def list_sessions(
        ctx: Context,
        since: Annotated[str | None, Field(description="Sessions active from this ISO date (2026-03-01) or span back from now (7d, 2w).")] = None,
        until: Annotated[str | None, Field(description="Sessions active up to this ISO date or span back from now.")] = None,
        project: Annotated[str | None, Field(description="Only sessions whose project path contains this.")] = None,
        git_branch: Annotated[str | None, Field(description="Only sessions with work on this git branch.")] = None,
        agent: Annotated[AgentName | None, Field(description="Only sessions of this assistant: claude-code, codex or gemini-cli.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_SESSIONS, description="How many sessions at most.")] = 20,
        offset: Annotated[int, Field(ge=0, description="Skip this many sessions (paging: use next_offset).")] = 0,
    ) -> Annotated[CallToolResult, ListSessionsResponse]:
        """A timeline of past sessions, latest activity first: when, where, title and first prompt.

        Use it for questions about time ("what did we do yesterday", "sessions on this repo this
        month"); use search for questions about a topic.

        Args:
            since: ISO date or datetime, or 7d / 2w back from now.
            until: ISO date or datetime, or a span back from now.
            project: Part of a project path; the current working directory narrows to this project.
            git_branch: A branch name.
            agent: claude-code, codex or gemini-cli.
            limit: Sessions per page, 1 to 100.
            offset: Sessions to skip, for the next page.
        """
        request = _validated(
            ListSessionsRequest, since=since, until=until, project=project, git_branch=git_branch, agent=agent, limit=limit, offset=offset
        )
        response = await _tool_call(_index(ctx).list_sessions(request))
        return _result(response, render_sessions(response))

    @server.tool(
        title="Update the session index",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    async def reindex(
        ctx: Context,
        full: Annotated[StrictBool, Field(description="Rebuild from nothing instead of indexing only new and changed sessions.")] = False,
    ) -> Annotated[CallToolResult, ReindexReport]:
        """Index new and changed Claude Code sessions, so that search finds recent work.

        Args:
            full: Rebuild the whole index (slow: every session is embedded again).
        """

        async def progress(update: ReindexProgress) -> None:
            await ctx.report_progress(update.files_done, update.files_total, f"{update.chunks_added} chunks added")

        report = await _tool_call(_index(ctx).reindex(ReindexOptions(full=full), progress=progress))
        return _result(report, render_report(report))

    @server.tool(
        title="Embedding model and index status",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    async def model_info(ctx: Context) -> Annotated[CallToolResult, ModelInfo]:
        """The embedding model, its prompt templates, and how much is indexed and when."""
        info = await _tool_call(_index(ctx).info())
        return _result(info, render_info(info))

    return server


def serve() -> int:
    """Entry point for `session-search serve` and `python -m mcp_server`."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        server = build_server(settings)
    except SessionSearchError as exc:
        print(f"session-search: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(WAITING, file=sys.stderr, flush=True)
    stopped_by = anyio.run(_serve_until_signal, server)
    if stopped_by is None:
        return 0  # the client closed stdin (or Ctrl-D)
    # The stdin reader thread may still block in read(): leave without waiting for it.
    sys.stderr.flush()
    os._exit(128 + stopped_by)


async def _serve_until_signal(server: MCPServer) -> int | None:
    """Serve until stdin closes (None) or SIGINT/SIGTERM arrives (its number): one Ctrl-C ends it."""
    stopped_by: int | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal stopped_by
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    stopped_by = signum
                    log.info("stopping (%s)", signal.Signals(signum).name)
                    # A background reindex is crash-safe; a stuck stdin read must not keep the process alive.
                    timer = threading.Timer(STOP_GRACE_S, os._exit, (128 + signum,))
                    timer.daemon = True
                    timer.start()
                    group.cancel_scope.cancel()
                    return

        group.start_soon(watch)
        await server.run_stdio_async()
        group.cancel_scope.cancel()
    return stopped_by
