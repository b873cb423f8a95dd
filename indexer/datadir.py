"""The data dir: created private (0700, files 0600), tightened when found looser, and checked
before anything is written, so a data dir that cannot be used fails with one line.

The index holds the user's whole conversation history; Claude Code's own transcripts are no
looser than this.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import DataDirError

log = logging.getLogger(__name__)
DIR_MODE, FILE_MODE = 0o700, 0o600
PRIVATE_UMASK = 0o077
FIX = "Set SESSION_SEARCH_DATA_DIR to a folder you can write, or fix this one's owner and mode."


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def prepare(data_dir: Path, *, write: bool = True) -> None:
    """Create data_dir (0700) if needed, tighten what is looser, and check it can be written.

    Raises:
        DataDirError: in one line, naming the folder and the fix.
    """
    try:
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"Cannot create the data dir {data_dir} ({_why(exc)}). {FIX}") from None
    if not data_dir.is_dir():
        raise DataDirError(f"The data dir {data_dir} is not a folder. {FIX}")
    tighten(data_dir)
    wanted = os.R_OK | os.X_OK | (os.W_OK if write else 0)
    if not os.access(data_dir, wanted, effective_ids=os.access in os.supports_effective_ids):
        raise DataDirError(
            f"Cannot {'write' if write else 'read'} the data dir {data_dir} (permission denied or a read-only file system). {FIX}"
        )


def tighten(data_dir: Path) -> None:
    """Folders 0700 and files 0600 under data_dir; what cannot be changed (not ours) is logged."""
    for root, dirs, files in os.walk(data_dir):
        for name in [root] + [os.path.join(root, f) for f in files]:
            try:
                current = stat.S_IMODE(os.lstat(name).st_mode)
                if current & 0o077 and not os.path.islink(name):
                    os.chmod(name, current & 0o700)  # group and others lose every bit
            except OSError as exc:
                log.debug("cannot tighten %s: %s", name, _why(exc))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def open_failure(path: Path, exc: BaseException) -> DataDirError:
    """A failure to open or write a file in the data dir, as one line."""
    what = "read-only (a read-only mount, or not yours)" if "readonly" in str(exc).replace(" ", "").lower() else _why(exc)
    return DataDirError(f"Cannot use {path}: {what}. {FIX}")


def sqlite_errors() -> tuple[type[BaseException], ...]:
    return (sqlite3.Error, OSError)


@dataclass(frozen=True, slots=True)
class DataDirFacts:
    """What doctor says about the data dir."""

    path: Path
    exists: bool
    mode: str | None
    size_bytes: int
    loose_files: int  # readable or writable by others


def facts(data_dir: Path) -> DataDirFacts:
    if not data_dir.is_dir():
        return DataDirFacts(data_dir, False, None, 0, 0)
    size = loose = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in [root] + [os.path.join(root, f) for f in files]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            size += st.st_size if name != root else 0
            loose += 1 if st.st_mode & 0o077 else 0
    return DataDirFacts(data_dir, True, oct(stat.S_IMODE(data_dir.stat().st_mode)), size, loose)


def describe_data_dir(data_dir: Path) -> str:
    found = facts(data_dir)
    if not found.exists:
        return f"{data_dir} (not created yet)"
    loose = f", {found.loose_files} entries open to others" if found.loose_files else ""
    return f"{data_dir} ({found.size_bytes / 1e6:.1f} MB, mode {found.mode}{loose})"
