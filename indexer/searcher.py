"""The shared searcher: one process per data dir (and settings) that holds the vector index for
every `session-search serve` on it, so N windows hold one copy of the HNSW index, not N.

    python -m indexer.searcher    # started by a server (searcher_client.py); settings as JSON on stdin

It runs the same SessionSearch the servers would (search, read_session, info), so it sees new
chunks on the next search exactly as they do: a reindex bumps the ledger's generation and
the store is reopened. It answers one JSON line per request line on a Unix socket (0600) in
the data dir (0700), holds `searcher-<key>.lock` for its life (so a second one started by
mistake exits, and a socket file left by a killed one is known stale and replaced), and exits
SESSION_SEARCH_SEARCHER_IDLE_S after its last server disconnected.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel, ValidationError

from indexer.config import Settings
from indexer.errors import SessionSearchError, error_reply
from indexer.models import ReadSessionRequest, SearchRequest
from indexer.searcher_client import MAX_LINE, SearcherPaths, settings_from_json
from indexer.service import SessionSearch

log = logging.getLogger("session_search.searcher")
LIFE_LOCK_WAIT_S = 10.0  # a searcher still exiting releases its lock within this


class Searcher:
    """Answers the servers' requests from one SessionSearch; counts them to know when to leave."""

    def __init__(self, settings: Settings, paths: SearcherPaths):
        self.index = SessionSearch(settings)
        self.paths = paths
        self.idle_s = settings.searcher_idle_s
        self.clients = 0
        self.idle_since = time.monotonic()
        self.ops: dict[str, Callable[[dict[str, object]], Awaitable[BaseModel]]] = {
            "search": lambda r: self.index.search(SearchRequest.model_validate(r)),
            "read_session": lambda r: self.index.read_session(ReadSessionRequest.model_validate(r)),
            "info": lambda _: self._info(),
        }

    async def _info(self) -> BaseModel:
        info = await self.index.info()
        held = f"the shared searcher, pid {os.getpid()}, for {self.clients} servers ({self.paths.socket})"
        return info.model_copy(update={"index_process": held})

    async def answer(self, line: bytes) -> bytes:
        try:
            message = json.loads(line)
            reply: dict[str, object] = {"ok": (await self.ops[message["op"]](message["request"])).model_dump(mode="json")}
        except SessionSearchError as exc:
            reply = {"error": error_reply(exc)}
        except (ValueError, KeyError, TypeError, ValidationError) as exc:  # a server of another version
            reply = {"error": {"kind": "", "message": f"bad request: {exc}"}}
        except Exception as exc:  # the server reports it as unexpected; this process keeps serving
            log.exception("request failed")
            reply = {"error": {"kind": "", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}}
        return json.dumps(reply).encode() + b"\n"

    async def serve_client(self, stream: SocketStream) -> None:
        self.clients += 1
        reader = BufferedByteReceiveStream(stream)
        try:
            async with stream:
                while True:
                    line = await reader.receive_until(b"\n", MAX_LINE)
                    await stream.send(await self.answer(line))
        except (
            OSError,
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.DelimiterNotFound,
        ):
            pass  # the server left (or was killed)
        finally:
            self.clients -= 1
            self.idle_since = time.monotonic()

    async def run(self) -> None:
        listener = await anyio.create_unix_listener(self.paths.socket, mode=0o600)
        log.info("searcher pid %d listening on %s", os.getpid(), self.paths.socket)
        async with anyio.create_task_group() as group:
            group.start_soon(listener.serve, self.serve_client)
            while self.clients or time.monotonic() - self.idle_since < self.idle_s:  # noqa: ASYNC110 - a deadline that moves, not an event
                await anyio.sleep(min(1.0, self.idle_s / 4 or 0.05))
            # Unlink first: a server connecting from now on starts a new searcher instead of reaching this one.
            self.paths.socket.unlink(missing_ok=True)
            await listener.aclose()
            group.cancel_scope.cancel()
        await self.index.aclose()
        log.info("searcher pid %d: no servers for %g s; exiting", os.getpid(), self.idle_s)


def _hold_life_lock(path: Path) -> int | None:
    """The searcher's lifetime lock, with its pid in it; None when another searcher holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LIFE_LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s searcher[{os.getpid()}] %(levelname)s %(message)s"
    )
    settings = settings_from_json(sys.stdin.read())
    paths = SearcherPaths.of(settings)
    fd = _hold_life_lock(paths.life_lock)
    if fd is None:
        log.info("another searcher holds %s; leaving it to serve", paths.life_lock)
        return 0
    paths.socket.unlink(missing_ok=True)  # left by a searcher that was killed: we hold the lock, so it is stale
    try:
        anyio.run(Searcher(settings, paths).run)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
