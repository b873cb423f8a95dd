"""One writer at a time per data dir: an advisory flock on data_dir/writer.lock.

The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never
leaves a stale lock behind. The file holds the holder's pid, for the busy message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from indexer.errors import IndexBusy


class WriterLock:
    """Held for the whole of a reindex. Raises IndexBusy when another holder has it."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / "writer.lock"
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IndexBusy(f"A reindex is already running (pid {holder}); wait for it to finish.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
