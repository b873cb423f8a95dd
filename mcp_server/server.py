"""The MCP server: thin tools over indexer.SessionSearch, served over stdio.

Nothing here indexes or searches; every tool body calls the same SessionSearch method
the CLI calls. Only protocol goes to stdout: logs go to stderr.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, TypeVar, cast

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo

from indexer.config import Settings, load_settings
from indexer.errors import InvalidArgument, SessionSearchError
from indexer.models import (
    ListSessionsRequest,
    ListSessionsResponse,
    ModelInfo,
    ReadSessionRequest,
    ReindexOptions,
    ReindexReport,
    Request,
    SearchRequest,
    SearchResponse,
    SessionPage,
    field_doc,
)
from indexer.pipeline import ReindexProgress
from indexer.render import render_info, render_report, render_search, render_session, render_sessions
from indexer.searcher_client import SearcherClient
from indexer.service import SessionSearch

log = logging.getLogger("session_search.server")
T = TypeVar("T")
M = TypeVar("M", bound=Request)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

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


class _RequestRefused(ToolError):
    """A tool's arguments broke a rule of its request model (its __cause__ says which)."""


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
            problem = exc.__cause__
            if isinstance(problem, ValidationError):  # the SDK's check against the input schema
                problem = InvalidArgument.from_validation(problem)
            elif isinstance(problem, _RequestRefused):  # the request model's own rules: a blank query, since after until
                problem = problem.__cause__
            if isinstance(problem, InvalidArgument):
                raise ToolError(f"Invalid argument to {name}: {problem}. Fix it and call again.") from problem
            raise


def _arguments(fields: dict[str, FieldInfo]) -> list[inspect.Parameter]:
    """Request model fields as keyword parameters, each with its type, bounds, default and description."""
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.default,
            annotation=Annotated[(field.annotation, *field.metadata, Field(description=field.description))],
        )
        for name, field in fields.items()
    ]


def _takes(
    model: type[M], only: Collection[str] | None = None
) -> Callable[[Callable[[M, Context], Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """A tool whose arguments are the request model's fields (or those named in only), documented from the model.

    The SDK builds a tool's input schema from `inspect.signature`, which honours `__signature__`: the
    schema is the model's fields as flat arguments, and its docs list them. The body gets the
    validated request; our errors become tool errors the model reads, and the server stays up.
    """

    def decorate(body: Callable[[M, Context], Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def tool(ctx: Context, **arguments: Any) -> T:
            try:
                request = model.parse(arguments)
            except InvalidArgument as exc:
                raise _RequestRefused(str(exc)) from exc
            return await _tool_call(body(request, ctx))

        fields = {name: field for name, field in model.model_fields.items() if only is None or name in only}
        returns = inspect.signature(body, eval_str=True).return_annotation
        context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
        tool.__signature__ = inspect.Signature([*_arguments(fields), context], return_annotation=returns)  # type: ignore[attr-defined]
        tool.__annotations__ = {"ctx": Context, "return": returns}  # where the SDK looks for the Context parameter
        tool.__name__ = tool.__qualname__ = body.__name__
        documented = [f"    {name}: {field_doc(field)}" for name, field in fields.items()]
        tool.__doc__ = inspect.cleandoc(body.__doc__ or "") + "\n\nArgs:\n" + "\n".join(documented)
        return tool

    return decorate


async def _tool_call(call: Awaitable[T]) -> T:
    """Our errors become ToolErrors: the model reads the message and the server stays up."""
    try:
        return await call
    except SessionSearchError as exc:
        raise ToolError(str(exc)) from None


def _result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json"))


def _index(ctx: Context) -> SessionSearch:
    app = cast(AppContext, ctx.request_context.lifespan_context)  # the SDK types it as a dict; lifespan() yields this
    return app.index


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

    @server.tool(title="Search past Claude Code sessions", annotations=READ_ONLY)
    @_takes(SearchRequest)
    async def search(request: SearchRequest, ctx: Context) -> Annotated[CallToolResult, SearchResponse]:
        """Search everything done in past Claude Code sessions, best match first."""
        response = await _index(ctx).search(request)
        return _result(response, render_search(response))

    @server.tool(title="Read a past session", annotations=READ_ONLY)
    @_takes(ReadSessionRequest)
    async def read_session(request: ReadSessionRequest, ctx: Context) -> Annotated[CallToolResult, SessionPage]:
        """Read the conversation around a search hit, in order, with roles and timestamps."""
        session = await _index(ctx).read_session(request)
        return _result(session, render_session(session))

    @server.tool(title="List past sessions, newest first", annotations=READ_ONLY)
    @_takes(ListSessionsRequest)
    async def list_sessions(request: ListSessionsRequest, ctx: Context) -> Annotated[CallToolResult, ListSessionsResponse]:
        """A timeline of past sessions, latest activity first: when, where, title and first prompt.

        Use it for questions about time ("what did we do yesterday", "sessions on this repo this
        month"); use search for questions about a topic.
        """
        response = await _index(ctx).list_sessions(request)
        return _result(response, render_sessions(response))

    @server.tool(
        title="Update the session index",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
    )
    @_takes(ReindexOptions, only=("full",))
    async def reindex(options: ReindexOptions, ctx: Context) -> Annotated[CallToolResult, ReindexReport]:
        """Index new and changed Claude Code sessions, so that search finds recent work."""

        async def progress(update: ReindexProgress) -> None:
            await ctx.report_progress(update.files_done, update.files_total, f"{update.chunks_added} chunks added")

        report = await _index(ctx).reindex(options, progress=progress)
        return _result(report, render_report(report))

    @server.tool(title="Embedding model and index status", annotations=READ_ONLY)
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
