"""The stdio server's side of the shared searcher (indexer/searcher.py).

Every Claude Code window runs its own `session-search serve`; loading the HNSW index in each
would hold one copy per window. With SESSION_SEARCH_SHARED_SEARCHER on (the default), a
server forwards search, read_session and model_info to one searcher process per data dir
and settings, over a private Unix socket, and never imports chromadb for them.

The first server that needs it starts it under a file lock, so two never start two. A
searcher that died (killed, or gone after its idle spell) is restarted on the next call, and
a call it dropped is sent once more: every forwarded call only reads.

The recall hook (hooks.py) asks the same searcher once (`ask_running`), without waiting for a
start: when none runs, it starts one through `python -m indexer.searcher_client`, detached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel, SecretStr

from indexer import errors
from indexer.config import Settings
from indexer.datadir import prepare

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

MAX_LINE = 64 * 2**20  # one request or answer: a read_session page is at most a few hundred kB
START_TIMEOUT_S = 60.0  # the searcher imports chromadb and opens the store before it listens
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
LOG_NAME = "searcher.log"
# A searcher killed mid-call is restarted and the call sent again. One dying can still accept a
# connection its listener then drops (its sockets close one by one): a third try covers that.
ATTEMPTS = 3
RETRY_PAUSE_S = 0.1
# They change no answer (recall's are read by the hook, the idle spell is the first starter's): a hook
# and a server that differ only in these share one searcher.
UNKEYED_FIELDS = frozenset({"recall", "recall_min_similarity", "recall_min_margin", "recall_deadline_s", "searcher_idle_s"})


class SearcherGone(Exception):
    """The connection to the searcher broke: it died or exited; a restart may help."""


def settings_json(settings: Settings) -> str:
    """The settings, secrets included, for the searcher to rebuild them exactly (sent over a pipe, never logged)."""
    values = settings.model_dump(mode="json")
    values["openai_api_key"] = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    values["chroma_headers"] = {name: secret.get_secret_value() for name, secret in settings.chroma_headers.items()}
    return json.dumps(values, sort_keys=True)


def settings_from_json(text: str) -> Settings:
    values = json.loads(text)
    values["chroma_headers"] = {name: SecretStr(value) for name, value in values["chroma_headers"].items()}
    return Settings.model_validate(values)


@dataclass(frozen=True, slots=True)
class SearcherPaths:
    """Where the searcher of one data dir and one set of settings listens, locks and logs."""

    socket: Path
    life_lock: Path  # held by the searcher for its whole life; holds its pid
    start_lock: Path  # held by a server while it starts one
    log: Path

    @classmethod
    def of(cls, settings: Settings) -> SearcherPaths:
        # Servers whose settings differ (another model, Ollama, store) get searchers of their own.
        keyed = settings.model_copy(update={name: Settings.model_fields[name].default for name in UNKEYED_FIELDS})
        key = hashlib.sha256(settings_json(keyed).encode()).hexdigest()[:12]
        data = settings.data_dir
        where = data / f"searcher-{key}.sock"
        if len(str(where)) > SOCKET_PATH_MAX:  # too long a path for a socket: a private folder under /tmp
            where = _private_tmp() / f"searcher-{hashlib.sha256(str(data).encode()).hexdigest()[:12]}-{key}.sock"
        return cls(where, data / f"searcher-{key}.lock", data / f"searcher-{key}.start", data / LOG_NAME)

    def holder(self) -> int | None:
        """The pid of the live searcher, from its lock file; None when there is none."""
        try:
            fd = os.open(self.life_lock, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a searcher lives
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _private_tmp() -> Path:
    folder = Path(tempfile.gettempdir()) / f"session-search-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    found = folder.lstat()
    if found.st_uid != os.getuid() or found.st_mode & 0o077 or not folder.is_dir() or folder.is_symlink():
        raise errors.DataDirError(
            f"{folder} is not a private folder of this user (0700); remove it so the shared searcher can listen there."
        )
    return folder


def _connectable(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class SearcherClient:
    """Forwards read-only calls to the shared searcher, starting it when it is not running."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._paths: SearcherPaths | None = None
        self._idle: list[tuple[SocketStream, BufferedByteReceiveStream]] = []
        self._started: list[subprocess.Popen[bytes]] = []

    @property
    def paths(self) -> SearcherPaths:
        """Found on first use: a server starts even where the searcher could not listen, and says why when asked."""
        if self._paths is None:
            self._paths = SearcherPaths.of(self.settings)
        return self._paths

    async def call(self, op: str, request: BaseModel | None, answer: type[M]) -> M:
        """The searcher's answer to op; its errors are raised here as the same SessionSearchError.

        Raises:
            SessionSearchError: what the searcher raised, or why it could not be reached.
        """
        line = _request_line(op, request)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                reply = await self._exchange(line)
                break
            except SearcherGone as exc:
                await self._drop_idle()  # connections to a dead searcher are all dead
                log.info(
                    "the shared searcher went away (%s); %s", exc, "starting it again" if attempt < ATTEMPTS else "giving up"
                )
                if attempt == ATTEMPTS:
                    raise errors.StoreError(
                        f"The shared searcher stopped answering {ATTEMPTS} times ({exc}); see {self.paths.log}. "
                        "SESSION_SEARCH_SHARED_SEARCHER=0 searches inside each server instead."
                    ) from None
                await anyio.sleep(RETRY_PAUSE_S * attempt)
        return _answer(reply, answer)

    async def _exchange(self, line: bytes) -> dict[str, object]:
        stream, reader = self._idle.pop() if self._idle else await self._connect()
        try:
            await stream.send(line)
            raw = await reader.receive_until(b"\n", MAX_LINE)
        except (OSError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            await stream.aclose()
            raise SearcherGone(type(exc).__name__) from None
        except BaseException:  # cancelled half-way: the answer would be read by the next call
            await stream.aclose()
            raise
        self._idle.append((stream, reader))
        return dict(json.loads(raw))

    async def _connect(self) -> tuple[SocketStream, BufferedByteReceiveStream]:
        self._reap()
        try:
            stream = await anyio.connect_unix(self.paths.socket)
        except OSError:
            await anyio.to_thread.run_sync(self.ensure_running)
            try:
                stream = await anyio.connect_unix(self.paths.socket)
            except OSError as exc:
                raise SearcherGone(f"cannot connect: {exc.strerror}") from None
        return stream, BufferedByteReceiveStream(stream)

    def ensure_running(self) -> None:
        """Start the searcher unless one listens; under the start lock, so two servers start one."""
        prepare(self.settings.data_dir)  # an unusable data dir says so in its own words
        fd = os.open(self.paths.start_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _connectable(self.paths.socket):
                return
            self._start()
        finally:
            os.close(fd)

    def _start(self) -> None:
        with open(self.paths.log, "ab") as log_file:
            os.chmod(self.paths.log, 0o600)
            child = subprocess.Popen(
                [sys.executable, "-m", "indexer.searcher"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                start_new_session=True,  # Ctrl-C in a terminal, or a client killing the server's group, leaves it to its other servers
            )
        assert child.stdin is not None
        child.stdin.write(settings_json(self.settings).encode())
        child.stdin.close()
        self._started.append(child)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _connectable(self.paths.socket):
            if child.poll() is not None:
                raise errors.StoreError(
                    f"The shared searcher exited at start ({_log_tail(self.paths.log)}); see {self.paths.log}."
                )
            if time.monotonic() > deadline:
                raise errors.StoreError(f"The shared searcher did not listen within {START_TIMEOUT_S:g} s; see {self.paths.log}.")
            time.sleep(0.02)
        log.info("started the shared searcher (pid %d) on %s", child.pid, self.paths.socket)

    def _reap(self) -> None:
        """Collect the exit status of searchers this process started that have ended (no zombies)."""
        self._started = [child for child in self._started if child.poll() is None]

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for stream, _ in idle:
            await stream.aclose()

    async def aclose(self) -> None:
        await self._drop_idle()
        self._reap()


class SearcherNotRunning(Exception):
    """No searcher listens on the socket: the caller that must not wait starts one for next time."""


async def ask_running(paths: SearcherPaths, op: str, request: BaseModel, answer: type[M]) -> M:
    """One call to the searcher that already listens: no start, no retry (for the recall hook, which must not wait).

    Raises:
        SearcherNotRunning: nothing listens on the socket.
        SearcherGone: the searcher dropped the connection.
        SessionSearchError: what the searcher raised.
    """
    try:
        stream = await anyio.connect_unix(paths.socket)
    except OSError as exc:
        raise SearcherNotRunning(exc.strerror) from None
    async with stream:
        try:
            await stream.send(_request_line(op, request))
            reply = dict(json.loads(await BufferedByteReceiveStream(stream).receive_until(b"\n", MAX_LINE)))
        except (OSError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError) as exc:
            raise SearcherGone(type(exc).__name__) from None
    return _answer(reply, answer)


def main() -> int:
    """`python -m indexer.searcher_client`: start the searcher for the settings on stdin unless one listens, and wait until it does.

    The recall hook runs this detached, so the hook itself never waits for chromadb to load.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(process)d %(levelname)s %(message)s")
    try:
        client = SearcherClient(settings_from_json(sys.stdin.read()))
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        log.error("no settings to start the shared searcher with (%s: %s)", type(exc).__name__, exc)
        return 2
    try:
        client.ensure_running()
    except errors.SessionSearchError as exc:
        log.warning("could not start the shared searcher: %s", exc)
    return 0


def _request_line(op: str, request: BaseModel | None) -> bytes:
    """One call on the wire: a JSON line."""
    return json.dumps({"op": op, "request": request.model_dump(mode="json") if request is not None else None}).encode() + b"\n"


def _answer(reply: dict[str, object], answer: type[M]) -> M:
    """The searcher's reply as `answer`, or its error raised."""
    if "error" in reply:
        raise errors.error_from(reply["error"], "the shared searcher")
    return answer.model_validate(reply["ok"])


if __name__ == "__main__":
    sys.exit(main())
