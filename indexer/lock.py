"""One writer at a time per data dir: an advisory flock on data_dir/writer.lock.

The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never
leaves a stale lock behind. The file holds the holder's pid, for the busy message. A child
writer (writer_process.py) holds a copy of the lock: when the lock is held but the pid in the
file is gone, that child is finishing its last write, and the next holder waits for it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from indexer.errors import IndexBusy

ORPHAN_WAIT_S = 60.0  # a child writer's last write takes seconds at most


class WriterLock:
    """Held for the whole of a reindex. Raises IndexBusy when another holder has it."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / "writer.lock"
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            # A holder that is gone left a child writer finishing its last write: wait for it.
            if _alive(holder) or not _lock_within(fd, ORPHAN_WAIT_S):
                os.close(fd)
                raise IndexBusy(f"A reindex is already running (pid {holder}); wait for it to finish.")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    @property
    def fd(self) -> int:
        """The locked file's descriptor: a child process that holds a copy keeps the lock held until it exits."""
        if self._fd is None:
            raise RuntimeError("the writer lock is not held")
        return self._fd

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _try_lock(fd):
            return True
    return False


def _alive(pid_text: str) -> bool:
    """Whether the process named in the lock file runs; unknown counts as alive."""
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
