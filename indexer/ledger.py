"""What has been indexed, per collection: sources with their size and mtime, chunks with
their content hash, which collection is active (served) or being built, and every stored
chunk's text and metadata (docs: what search returns, so Chroma is asked for ids and
distances only) with the ranked keyword index over it (FTS5, BM25).

A SQLite file beside the vectors (data_dir/ledger.sqlite), in WAL mode so that readers in
other processes never block the writer. Crash safety rests on one rule: a chunk id is
written here (as pending, empty hash) before its vector goes to Chroma, and gets its
hash after. A killed run therefore leaves every stored id known to the ledger, and the
next run deletes what no source produces any more. Docs rows are written in the same
transaction as a source's chunk rows, so the keyword index always matches the ledger.

Its schema and migrations are in ledger_schema.py; the docs table and keyword index, with all
SQL over them, in ledger_docs.py.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from indexer.chunk import Chunk
from indexer.ledger_docs import DocsIndex
from indexer.ledger_schema import LATEST, migrate, version
from indexer.sources import SourceFile

log = logging.getLogger(__name__)
FORMAT = LATEST  # the schema version; see ledger_schema.py for what each one added
PENDING = ""  # content_hash of a chunk whose vector may or may not have reached Chroma


def _owner(chunk: Chunk) -> tuple[str, str]:
    return str(chunk.metadata.get("session_id", "")), str(chunk.metadata.get("project", ""))


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    name: str
    identity: str  # IndexIdentity as JSON
    query_template: str


class _Meta:
    """One key of the meta table as a typed attribute: its value, or None when unset."""

    def __init__(self, key: str, doc: str):
        self.key, self.__doc__ = key, doc

    def __get__(self, state: CatalogState, owner: object = None) -> str | None:
        return state.get_meta(self.key)

    def __set__(self, state: CatalogState, value: str | None) -> None:
        state.set_meta(self.key, value)


class CatalogState:
    """The catalog's state, kept in the ledger's meta table: typed names for its keys (a part of `Ledger`)."""

    _db: sqlite3.Connection

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    active = _Meta("active", "The collection searches use (switched with `switch_active`).")
    building = _Meta("building", "The collection a reindex builds beside the served one, until it is switched in.")
    generation = _Meta("generation", "Changes whenever a writer changed the index: readers reopen their store on a new one.")
    last_indexed = _Meta("last_indexed", "When a reindex last finished (ISO 8601, seconds, UTC).")
    written_to = _Meta("store", "The store the index was last written to, as `describe_store` names it.")

    def stamp_indexed(self) -> None:
        self.set_meta("last_indexed", datetime.now(UTC).isoformat(timespec="seconds"))

    def publish(self, written_to: str) -> str:
        """Record a finished write to the store written_to; the new generation."""
        generation = uuid.uuid4().hex
        self.set_meta("generation", generation)
        self.stamp_indexed()
        self.set_meta("store", written_to)
        return generation


class Ledger(DocsIndex, CatalogState):
    """The index's bookkeeping; one SQLite connection, used from the event-loop thread."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    @property
    def schema_version(self) -> int:
        return version(self._db)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._db.close()

    def _reading(self) -> sqlite3.Connection:
        """The connection for a search's reads: the main one on the owner's thread, else one per
        thread (WAL readers do not block each other), so keyword search can run in a worker
        thread beside the vector search."""
        if threading.get_ident() == self._owner:
            return self._db
        reader = getattr(self._local, "db", None)
        if reader is None:
            reader = sqlite3.connect(self._path, timeout=30, check_same_thread=False, isolation_level=None)
            reader.execute("PRAGMA query_only = 1")
            self._local.db = reader
            self._readers.append(reader)
        return reader

    def _transaction(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def _commit(self) -> None:
        self._db.execute("COMMIT")

    # -- collections ---------------------------------------------------------------------

    def add_collection(self, record: CollectionRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?)",
            (record.name, record.identity, record.query_template, time.time()),
        )

    def collection(self, name: str | None) -> CollectionRecord | None:
        if name is None:
            return None
        row = self._db.execute("SELECT name, identity, query_template FROM collections WHERE name = ?", (name,)).fetchone()
        return CollectionRecord(*row) if row else None

    def collection_names(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT name FROM collections")}

    def switch_active(self, name: str) -> None:
        """Serve `name` from now on; one transaction, so readers see the old or the new, never neither."""
        self._transaction()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('active', ?)", (name,))
        self._db.execute("DELETE FROM meta WHERE key = 'building'")
        self._commit()

    def source_row(self, collection: str, rel_path: str) -> tuple[int, int] | None:
        row = self._db.execute(
            "SELECT size, mtime_ns FROM sources WHERE collection = ? AND rel_path = ?", (collection, rel_path)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def drop_collection(self, name: str) -> None:
        self._transaction()
        for table in ("chunks", "sources", "docs"):
            self._db.execute(f"DELETE FROM {table} WHERE collection = ?", (name,))
        self._db.execute("DELETE FROM collections WHERE name = ?", (name,))
        self._commit()

    # -- sources and chunks --------------------------------------------------------------

    def is_current(self, collection: str, source: SourceFile) -> bool:
        row = self._db.execute(
            "SELECT size, mtime_ns FROM sources WHERE collection = ? AND rel_path = ?", (collection, source.rel_path)
        ).fetchone()
        return row is not None and tuple(row) == (source.size, source.mtime_ns)

    def chunk_hashes(self, collection: str, rel_path: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT id, content_hash FROM chunks WHERE collection = ? AND rel_path = ?", (collection, rel_path)
        )
        return dict(rows.fetchall())

    def owned_elsewhere(self, collection: str, rel_path: str, ids: Iterable[str]) -> set[str]:
        """Those of ids that another source also produces (a resumed session's copies)."""
        found: set[str] = set()
        ids = list(ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT DISTINCT id FROM chunks WHERE collection = ? AND rel_path != ? AND id IN ({marks})",
                (collection, rel_path, *part),
            )
            found.update(row[0] for row in rows)
        return found

    def removable(self, collection: str, rel_path: str, ids: Sequence[str]) -> list[str]:
        """Those of a source's ids that no other source also produces: what removing it may delete."""
        shared = self.owned_elsewhere(collection, rel_path, ids)
        return [i for i in ids if i not in shared]

    def mark_pending(self, collection: str, rel_path: str, chunks: Iterable[Chunk]) -> None:
        """Record ids about to be written to Chroma, before they are."""
        rows = [(collection, c.id, rel_path, PENDING, *_owner(c)) for c in chunks]
        self._transaction()
        self._db.executemany("INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._commit()

    def record(
        self,
        collection: str,
        source: SourceFile,
        session_id: str,
        chunks: Sequence[Chunk],
        removed: Sequence[str] = (),
        *,
        complete: bool = True,
    ) -> None:
        """Replace what is known about one source, once its vectors are stored.

        An incomplete source (some chunk could not be embedded) is not marked current, so the
        next run looks at it again and embeds only what is missing.
        """
        rows = [(collection, c.id, source.rel_path, c.content_hash, *_owner(c)) for c in chunks]
        self._transaction()
        self._db.execute("DELETE FROM chunks WHERE collection = ? AND rel_path = ?", (collection, source.rel_path))
        self._db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._replace_docs(collection, [c.id for c in chunks] + list(removed), chunks)
        self._db.execute(
            "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
            (collection, source.rel_path, source.size, source.mtime_ns if complete else -1, session_id, len(rows), time.time()),
        )
        self._commit()

    def ids(self, collection: str) -> tuple[set[str], set[str]]:
        """Chunk ids recorded as stored (pending ones left out), and ids in the keyword index."""
        recorded = self._db.execute("SELECT id FROM chunks WHERE collection = ? AND content_hash != ?", (collection, PENDING))
        keyword = self._db.execute("SELECT id FROM docs WHERE collection = ?", (collection,))
        return {row[0] for row in recorded}, {row[0] for row in keyword}

    def drop_docs(self, collection: str, ids: Sequence[str]) -> None:
        """Remove keyword rows that no chunk record owns (doctor --repair)."""
        self._transaction()
        self._replace_docs(collection, list(ids), [])
        self._commit()

    def sources_of(self, collection: str, ids: Sequence[str]) -> set[str]:
        """The transcripts (rel_path) whose chunk records hold these ids."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self._db.execute(
                f"SELECT rel_path FROM chunks WHERE collection = ? AND id IN ({','.join('?' * len(part))})", (collection, *part)
            )
            found.update(row[0] for row in rows)
        return found

    def skip_session(self, session_id: str) -> bool:
        """Remember a session marked `session-search: skip`; True if it was not known yet."""
        return self._db.execute("INSERT OR IGNORE INTO skipped_sessions VALUES (?)", (session_id,)).rowcount > 0

    def skipped_sessions(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT session_id FROM skipped_sessions")}

    def session_sources(self, collection: str, session_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT rel_path FROM sources WHERE collection = ? AND session_id = ? ORDER BY rel_path", (collection, session_id)
        )
        return [row[0] for row in rows]

    def forget(self, collection: str, rel_path: str, removed: Sequence[str]) -> None:
        self._transaction()
        self._replace_docs(collection, removed, [])
        self._db.execute("DELETE FROM chunks WHERE collection = ? AND rel_path = ?", (collection, rel_path))
        self._db.execute("DELETE FROM sources WHERE collection = ? AND rel_path = ?", (collection, rel_path))
        self._commit()

    def known_sources(self, collection: str) -> set[str]:
        rows = self._db.execute("SELECT rel_path FROM sources WHERE collection = ?", (collection,))
        return {row[0] for row in rows}

    def source_count(self, collection: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM sources WHERE collection = ?", (collection,)).fetchone()[0])

    def projects(self, collection: str) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT project FROM chunks WHERE collection = ? AND project != ''", (collection,))
        return [row[0] for row in rows]

    def session_count(self, collection: str) -> int:
        row = self._db.execute("SELECT COUNT(DISTINCT session_id) FROM chunks WHERE collection = ?", (collection,)).fetchone()
        return int(row[0])
