"""What has been indexed: per source file its size and mtime, per chunk its content hash.

A SQLite file beside the vectors (data_dir/ledger.sqlite). A source's row is written
after its vectors, in one transaction, so a crash between the two only means the file
is looked at again next time; upserts by deterministic id make that harmless.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.sources import SourceFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    rel_path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    session_id TEXT NOT NULL, chunks INTEGER NOT NULL, indexed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, rel_path TEXT NOT NULL, content_hash TEXT NOT NULL,
    session_id TEXT NOT NULL, project TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(rel_path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class LedgerChunk:
    id: str
    content_hash: str
    session_id: str
    project: str


class Ledger:
    """The index's bookkeeping, one SQLite connection per instance."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def is_current(self, source: SourceFile) -> bool:
        row = self._db.execute("SELECT size, mtime_ns FROM sources WHERE rel_path = ?", (source.rel_path,)).fetchone()
        return row is not None and tuple(row) == (source.size, source.mtime_ns)

    def chunk_hashes(self, rel_path: str) -> dict[str, str]:
        rows = self._db.execute("SELECT id, content_hash FROM chunks WHERE rel_path = ?", (rel_path,))
        return dict(rows.fetchall())

    def known_sources(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT rel_path FROM sources")}

    def record(self, source: SourceFile, session_id: str, chunks: Iterable[LedgerChunk]) -> None:
        """Replace what is known about one source."""
        rows = [(c.id, source.rel_path, c.content_hash, c.session_id, c.project) for c in chunks]
        with self._db:
            self._db.execute("DELETE FROM chunks WHERE rel_path = ?", (source.rel_path,))
            self._db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?)",
                (source.rel_path, source.size, source.mtime_ns, session_id, len(rows), time.time()),
            )

    def forget(self, rel_path: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM chunks WHERE rel_path = ?", (rel_path,))
            self._db.execute("DELETE FROM sources WHERE rel_path = ?", (rel_path,))

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM chunks")
            self._db.execute("DELETE FROM sources")

    def projects(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT project FROM chunks WHERE project != ''")]

    def session_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(DISTINCT session_id) FROM chunks").fetchone()[0])

    def has_session(self, session_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM chunks WHERE session_id = ? LIMIT 1", (session_id,)).fetchone() is not None

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
