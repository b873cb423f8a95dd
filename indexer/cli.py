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
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

import anyio
from pydantic import BaseModel

from indexer.config import Settings, load_settings
from indexer.datadir import PRIVATE_UMASK
from indexer.errors import IndexBusy, InvalidArgument, SessionSearchError, first_error
from indexer.models import ListSessionsRequest, ReadSessionRequest, ReindexOptions, Request, SearchRequest, field_doc
from indexer.render import render_info, render_report, render_search, render_session, render_sessions

if TYPE_CHECKING:
    from indexer.pipeline import ReindexProgress

T = TypeVar("T")
EXIT_FAILURE, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 1, 2, 75, 130
# The request each command takes; its fields are the command's options (the MCP tools take the same models).
REQUESTS: dict[str, type[Request]] = {
    "reindex": ReindexOptions,
    "search": SearchRequest,
    "read": ReadSessionRequest,
    "sessions": ListSessionsRequest,
}
NOT_OPTIONS = {"paths"}  # ReindexOptions.paths is the Stop hook's, not the user's
SHORTER_FLAGS = {"top_k": ("-k",), "session_id": ("--session",), "git_branch": ("--branch",)}  # spellings users already type


def _option(field_type: Any, default: Any) -> dict[str, Any]:
    """How argparse reads a field of this type: a flag for a bool, choices for a Literal, int for an int."""
    kinds = [t for t in get_args(field_type) if t is not type(None)] if get_origin(field_type) is not Literal else []
    base = kinds[0] if len(kinds) == 1 else field_type  # X | None -> X
    if base is bool:
        return {"action": argparse.BooleanOptionalAction if default else "store_true"}
    if get_origin(base) is Literal:
        return {"choices": get_args(base)}
    return {"type": int} if base is int else {}


def _add_request(parser: argparse.ArgumentParser, model: type[Request]) -> None:
    """The request model's fields as arguments: a required one is positional, the rest options.

    Names, choices and help come from the model; an option not given is left out, so the
    model's own default applies, as it does for an MCP tool call.
    """
    for name, field in model.model_fields.items():
        if name in NOT_OPTIONS:
            continue
        kind = _option(field.annotation, field.default)
        if field.is_required():
            parser.add_argument(name, help=field_doc(field), **kind)
        else:
            flags = [*SHORTER_FLAGS.get(name, ()), "--" + name.replace("_", "-")]
            parser.add_argument(*flags, dest=name, default=argparse.SUPPRESS, help=field_doc(field), **kind)


def _request(args: argparse.Namespace) -> Request | None:
    """The command's request from its arguments, checked by the model (None for a command without one)."""
    model = REQUESTS.get(args.command)
    return model.parse({k: v for k, v in vars(args).items() if k in model.model_fields}) if model else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="session-search", description="Search your past Claude Code sessions.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the MCP server over stdio")
    reindex = commands.add_parser("reindex", help="index new and changed sessions")
    _add_request(reindex, ReindexOptions)
    reindex.add_argument("--quiet", action="store_true", help="no progress output")
    reindex.add_argument("--json", action="store_true", help="print the report as JSON")
    hook = commands.add_parser("hook", help="run as a Claude Code hook (reads the hook's JSON on stdin)")
    hook.add_argument("event", help="SessionStart, Stop or UserPromptSubmit")
    search = commands.add_parser("search", help="search indexed sessions")
    _add_request(search, SearchRequest)
    search.add_argument("--json", action="store_true", help="print what the MCP search tool returns")
    read = commands.add_parser("read", help="read a session's conversation, around a search hit or from a message")
    _add_request(read, ReadSessionRequest)
    read.add_argument("--json", action="store_true", help="print what the MCP read_session tool returns")
    sessions = commands.add_parser("sessions", help="list indexed sessions, latest first")
    _add_request(sessions, ListSessionsRequest)
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
        elif not self.quiet and (
            time.monotonic() - self.last_line >= self.LINE_EVERY_S or update.files_done == update.files_total
        ):
            self.last_line = time.monotonic()
            print(f"reindex: {update.files_done}/{update.files_total} files, {rate}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(settings: Settings, args: argparse.Namespace, request: Request | None) -> int:
    from indexer.service import SessionSearch

    async def with_index(action: Callable[[SessionSearch], Awaitable[T]]) -> T:
        async with SessionSearch(settings) as index:
            return await _until_interrupted(action(index))

    if isinstance(request, ReindexOptions):
        progress = _Progress(args.quiet or args.json)
        try:
            report = anyio.run(with_index, lambda ix: ix.reindex(request, progress=progress))
        finally:
            progress.close()
        _print_json(report) if args.json else print(render_report(report))
    elif isinstance(request, SearchRequest):
        response = anyio.run(with_index, lambda ix: ix.search(request))
        _print_json(response) if args.json else print(render_search(response))
    elif isinstance(request, ReadSessionRequest):
        page = anyio.run(with_index, lambda ix: ix.read_session(request))
        _print_json(page) if args.json else print(render_session(page))
    elif isinstance(request, ListSessionsRequest):
        found = anyio.run(with_index, lambda ix: ix.list_sessions(request))
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
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        from mcp_server.server import serve

        return serve()
    try:
        request = _request(args)
    except InvalidArgument as exc:  # a bad option: usage, not a failure
        print(f"session-search: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(load_settings(), args, request)
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
        print(
            f"session-search: {type(exc).__name__}: {exc}. Run `session-search doctor`, or again with -v for the traceback.",
            file=sys.stderr,
        )
        return EXIT_FAILURE
