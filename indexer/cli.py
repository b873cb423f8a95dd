"""The `session-search` command: parse arguments, call SessionSearch, print.

Errors become one line on stderr and a non-zero exit: 1 for a failure, 2 for bad
arguments, 75 (EX_TEMPFAIL) when another reindex is running, 130 on Ctrl-C. A traceback
only with -v.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from indexer.config import KNOWN_AGENTS, Settings, load_settings
from indexer.datadir import PRIVATE_UMASK
from indexer.errors import IndexBusy, SessionSearchError, first_error
from indexer.models import ListSessionsRequest, ReindexOptions, SearchRequest
from indexer.render import render_info, render_report, render_search, render_sessions

if TYPE_CHECKING:
    from indexer.pipeline import ReindexProgress

T = TypeVar("T")
EXIT_FAILURE, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 1, 2, 75, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="session-search", description="Search your past Claude Code sessions.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the MCP server over stdio")
    reindex = commands.add_parser("reindex", help="index new and changed sessions")
    reindex.add_argument("--full", action="store_true", help="rebuild the index from nothing (beside the old one)")
    reindex.add_argument("--prune", action="store_true", help="remove sessions whose transcripts Claude Code deleted")
    reindex.add_argument("--project", help="only transcripts of projects whose path contains this")
    reindex.add_argument("--since", help="only transcripts modified since this ISO date")
    reindex.add_argument("--dry-run", action="store_true", help="count files, chunks and tokens; embed nothing")
    reindex.add_argument("--quiet", action="store_true", help="no progress output")
    reindex.add_argument("--json", action="store_true", help="print the report as JSON")
    hook = commands.add_parser("hook", help="run as a Claude Code hook (reads the hook's JSON on stdin)")
    hook.add_argument("event", help="SessionStart, Stop or UserPromptSubmit")
    search = commands.add_parser("search", help="search indexed sessions")
    search.add_argument("query")
    search.add_argument("-k", "--top-k", type=int, default=10)
    search.add_argument("--project", help="a project path or part of one")
    search.add_argument("--session", dest="session_id", help="a session id")
    search.add_argument("--since", help="ISO date or datetime")
    search.add_argument("--until", help="ISO date or datetime")
    search.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid", help="ranking (default: %(default)s)")
    search.add_argument("--agent", choices=KNOWN_AGENTS, help="only sessions of this coding agent")
    search.add_argument("--json", action="store_true", help="print what the MCP search tool returns")
    sessions = commands.add_parser("sessions", help="list indexed sessions, latest first")
    sessions.add_argument("--since", help="ISO date or a span back from now (7d, 2w)")
    sessions.add_argument("--until", help="ISO date or a span back from now")
    sessions.add_argument("--project", help="a project path or part of one")
    sessions.add_argument("--branch", dest="git_branch", help="a git branch")
    sessions.add_argument("--agent", choices=KNOWN_AGENTS, help="only sessions of this coding agent")
    sessions.add_argument("--limit", type=int, default=20)
    sessions.add_argument("--offset", type=int, default=0)
    sessions.add_argument("--json", action="store_true", help="print what the MCP list_sessions tool returns")
    info = commands.add_parser("info", help="the model, templates and index state")
    info.add_argument("--json", action="store_true", help="print what the MCP model_info tool returns")
    doctor = commands.add_parser("doctor", help="why search does not find something: folders, Ollama, index, data dir")
    doctor.add_argument("--repair", action="store_true", help="bring a disagreeing index back to a clean build's state")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _print_json(model: BaseModel) -> None:
    print(json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=False))


class _Progress:
    """A progress bar on a terminal; a plain line every few seconds otherwise (logs, hooks)."""

    LINE_EVERY_S = 10.0

    def __init__(self, quiet: bool):
        self.quiet, self.tty = quiet, sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_line = 0.0
        self.bar = None
        if self.tty and not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, update: ReindexProgress) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = f"{update.chunks_added} chunks, {update.chunks_added / elapsed:.1f} chunks/s"
        if self.bar is not None:
            self.bar.total = update.files_total
            self.bar.set_postfix_str(rate, refresh=False)
            self.bar.update(update.files_done - self.bar.n)
        elif not self.quiet and (time.monotonic() - self.last_line >= self.LINE_EVERY_S or update.files_done == update.files_total):
            self.last_line = time.monotonic()
            print(f"reindex: {update.files_done}/{update.files_total} files, {rate}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.service import SessionSearch

    async def with_index(action: Callable[[SessionSearch], Awaitable[T]]) -> T:
        async with SessionSearch(settings) as index:
            return await _until_interrupted(action(index))

    if args.command == "reindex":
        options = ReindexOptions(full=args.full, prune=args.prune, project=args.project, since=args.since, dry_run=args.dry_run)
        progress = _Progress(args.quiet or args.json)
        try:
            report = anyio.run(with_index, lambda ix: ix.reindex(options, progress=progress))
        finally:
            progress.close()
        _print_json(report) if args.json else print(render_report(report))
    elif args.command == "search":
        request = SearchRequest(
            query=args.query, top_k=args.top_k, project=args.project, session_id=args.session_id,
            since=args.since, until=args.until, mode=args.mode, agent=args.agent,
        )
        response = anyio.run(with_index, lambda ix: ix.search(request))
        _print_json(response) if args.json else print(render_search(response))
    elif args.command == "sessions":
        listing = ListSessionsRequest(
            since=args.since, until=args.until, project=args.project, git_branch=args.git_branch, agent=args.agent,
            limit=args.limit, offset=args.offset,
        )
        found = anyio.run(with_index, lambda ix: ix.list_sessions(listing))
        _print_json(found) if args.json else print(render_sessions(found))
    elif args.command == "info":
        info = anyio.run(with_index, lambda ix: ix.info())
        _print_json(info) if args.json else print(render_info(info))
    elif args.command == "doctor":
        from indexer.doctor import examine, render_doctor, repair

        report = anyio.run(with_index, lambda ix: repair(ix) if args.repair else examine(ix))
        _print_json(report) if args.json else print(render_doctor(report))
        return 0 if report.healthy else EXIT_FAILURE
    return 0


async def _until_interrupted(call: Awaitable[T]) -> T:
    """Run call; a SIGINT cancels it (its cleanup runs) and then raises KeyboardInterrupt, however it ended."""
    flag: list[bool] = []
    result: list[T] = []
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_watch_sigint, group.cancel_scope, flag)
            result.append(await call)
            group.cancel_scope.cancel()
    except BaseExceptionGroup as failure:
        raise first_error(failure) from None
    if flag or not result:
        raise KeyboardInterrupt
    return result[0]


async def _watch_sigint(scope: anyio.CancelScope, flag: list[bool]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            flag.append(True)
            scope.cancel()
            return


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # the index holds the user's conversations: nobody else may read what we write
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return code
    except KeyboardInterrupt:
        print("session-search: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `search ... | head -1`: the reader left, which is no error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hook":  # a hook prints nothing: its log goes to hooks.log
        logging.basicConfig(handlers=[logging.NullHandler()])
        from indexer.hooks import run_hook

        return run_hook(args.event)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from mcp_server.server import serve

        return serve()
    try:
        return _run(load_settings(), args)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"session-search: {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except IndexBusy as exc:
        print(f"session-search: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except SessionSearchError as exc:
        print(f"session-search: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("session-search: interrupted; what was indexed so far is kept, run again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except (OSError, sqlite3.Error, RuntimeError, ValueError) as exc:  # not ours: still one line, the detail with -v
        if args.verbose:
            raise
        print(f"session-search: {type(exc).__name__}: {exc}. Run `session-search doctor`, or again with -v for the traceback.", file=sys.stderr)
        return EXIT_FAILURE
