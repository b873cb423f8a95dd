"""The `session-search` command: parse arguments, call SessionSearch, print.

Errors become one line on stderr and a non-zero exit: 1 for a failure, 2 for bad
arguments, 75 (EX_TEMPFAIL) when another reindex is running, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from indexer.config import Settings, load_settings
from indexer.errors import IndexBusy, SessionSearchError
from indexer.models import SearchRequest
from indexer.render import render_info, render_report, render_search

T = TypeVar("T")
EXIT_FAILURE, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 1, 2, 75, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="session-search", description="Search your past Claude Code sessions.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the MCP server over stdio")
    reindex = commands.add_parser("reindex", help="index new and changed sessions")
    reindex.add_argument("--full", action="store_true", help="rebuild the index from nothing")
    reindex.add_argument("--quiet", action="store_true", help="no progress bar")
    reindex.add_argument("--json", action="store_true", help="print the report as JSON")
    search = commands.add_parser("search", help="search indexed sessions")
    search.add_argument("query")
    search.add_argument("-k", "--top-k", type=int, default=10)
    search.add_argument("--project", help="a project path or part of one")
    search.add_argument("--session", dest="session_id", help="a session id")
    search.add_argument("--since", help="ISO date or datetime")
    search.add_argument("--until", help="ISO date or datetime")
    search.add_argument("--json", action="store_true", help="print what the MCP search tool returns")
    info = commands.add_parser("info", help="the model, templates and index state")
    info.add_argument("--json", action="store_true", help="print what the MCP model_info tool returns")
    return parser


def _print_json(model: BaseModel) -> None:
    print(json.dumps(model.model_dump(mode="json"), indent=2, ensure_ascii=False))


def _progress_bar(quiet: bool) -> tuple[Callable[..., None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", disable=True if quiet else None, file=sys.stderr, dynamic_ncols=True)

    def update(progress) -> None:  # noqa: ANN001 - a pipeline.ReindexProgress
        bar.total = progress.files_total
        bar.set_postfix_str(f"{progress.chunks_added} chunks", refresh=False)
        bar.update(progress.files_done - bar.n)

    return update, bar.close


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from indexer.pipeline import SessionSearch

    async def with_index(action: Callable[[SessionSearch], Awaitable[T]]) -> T:
        index = SessionSearch(settings)
        try:
            return await action(index)
        finally:
            await index.aclose()

    if args.command == "reindex":
        update, close = _progress_bar(args.quiet or args.json)
        try:
            report = anyio.run(with_index, lambda ix: ix.reindex(full=args.full, progress=update))
        finally:
            close()
        _print_json(report) if args.json else print(render_report(report))
    elif args.command == "search":
        request = SearchRequest(
            query=args.query, top_k=args.top_k, project=args.project, session_id=args.session_id,
            since=args.since, until=args.until,
        )
        response = anyio.run(with_index, lambda ix: ix.search(request))
        _print_json(response) if args.json else print(render_search(response))
    elif args.command == "info":
        info = anyio.run(with_index, lambda ix: ix.info())
        _print_json(info) if args.json else print(render_info(info))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
