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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.chunk import Chunk
from indexer.sources import SourceFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY, identity TEXT NOT NULL, query_template TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    collection TEXT NOT NULL, rel_path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    session_id TEXT NOT NULL, chunks INTEGER NOT NULL, indexed_at REAL NOT NULL,
    PRIMARY KEY (collection, rel_path));
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL, id TEXT NOT NULL, rel_path TEXT NOT NULL, content_hash TEXT NOT NULL,
    session_id TEXT NOT NULL, project TEXT NOT NULL,
    PRIMARY KEY (collection, id, rel_path));
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(collection, rel_path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS skipped_sessions (session_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,
    project TEXT NOT NULL, git_branch TEXT NOT NULL, ts_epoch INTEGER, kind TEXT NOT NULL, agent_id TEXT NOT NULL,
    is_sidechain INTEGER NOT NULL, tools TEXT NOT NULL, meta TEXT NOT NULL, text TEXT NOT NULL,
    agent TEXT NOT NULL DEFAULT 'claude-code',
    UNIQUE (collection, id));
CREATE INDEX IF NOT EXISTS docs_by_session ON docs(collection, session_id, id);
CREATE INDEX IF NOT EXISTS docs_by_project ON docs(collection, project, ts_epoch, id);
CREATE INDEX IF NOT EXISTS docs_by_time ON docs(collection, ts_epoch, id);
CREATE INDEX IF NOT EXISTS docs_by_filters ON docs(collection, is_sidechain, kind, git_branch, project, ts_epoch, session_id, tools, id);
CREATE TABLE IF NOT EXISTS titles (session_id TEXT PRIMARY KEY, title TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(
    text, content = 'docs', content_rowid = 'rowid', tokenize = "unicode61 tokenchars '_'");
CREATE TRIGGER IF NOT EXISTS docs_added AFTER INSERT ON docs BEGIN
    INSERT INTO words(rowid, text) VALUES (new.rowid, new.text); END;
CREATE TRIGGER IF NOT EXISTS docs_removed AFTER DELETE ON docs BEGIN
    INSERT INTO words(words, rowid, text) VALUES ('delete', old.rowid, old.text); END;
"""
log = logging.getLogger(__name__)
FORMAT = 4  # 4: docs.agent and session titles; 3: docs table with indexed filter columns, FTS5 over it; 2: one FTS5 table
DEFAULT_AGENT = "claude-code"
# Created after the upgrade has added docs.agent to an older ledger.
AGENT_INDEX = "CREATE INDEX IF NOT EXISTS docs_by_agent ON docs(collection, agent, ts_epoch, id)"
PENDING = ""  # content_hash of a chunk whose vector may or may not have reached Chroma


def _owner(chunk: Chunk) -> tuple[str, str]:
    return str(chunk.metadata.get("session_id", "")), str(chunk.metadata.get("project", ""))


DOC_COLUMNS = "collection, id, session_id, project, git_branch, ts_epoch, kind, agent_id, is_sidechain, tools, meta, text, agent"
# A schema-2 ledger kept its keyword rows in one FTS5 table, filter columns unindexed; its rows move to docs.
FROM_SCHEMA_2 = f"""INSERT OR IGNORE INTO docs ({DOC_COLUMNS}) SELECT collection, id, session_id, project, git_branch, ts_epoch,
    kind, agent_id, coalesce(json_extract(meta, '$.is_sidechain'), 0), tools, meta, text, 'claude-code' FROM keyword"""


def _doc_row(collection: str, chunk: Chunk) -> tuple[object, ...]:
    meta = chunk.metadata
    tools = meta.get("tools")
    return (
        collection, chunk.id, meta.get("session_id", ""), meta.get("project", ""), meta.get("git_branch", ""),
        meta.get("ts_epoch"), meta.get("kind", ""), meta.get("agent_id", ""), int(bool(meta.get("is_sidechain"))),
        "," + ",".join(tools) + "," if isinstance(tools, list) else ",", json.dumps(meta), chunk.text,
        meta.get("agent") or DEFAULT_AGENT,
    )


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    name: str
    identity: str  # IndexIdentity as JSON
    query_template: str


class Ledger:
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
        self._db.executescript(SCHEMA)
        self._upgrade()
        self._add_agent_column()
        self._db.execute(AGENT_INDEX)

    def _add_agent_column(self) -> None:
        """A format-3 ledger's docs predate agents: every row is Claude Code's."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(docs)")}
        if "agent" not in columns:
            try:
                self._db.execute(f"ALTER TABLE docs ADD COLUMN agent TEXT NOT NULL DEFAULT '{DEFAULT_AGENT}'")
            except sqlite3.OperationalError as error:  # another process added it first
                if "duplicate column" not in str(error):
                    raise

    def _upgrade(self) -> None:
        """Move a schema-2 ledger's keyword rows into docs, once; other processes wait on the write lock."""
        if not self._has_table("keyword"):
            return
        self._transaction()
        try:
            if self._has_table("keyword"):
                moved = self._db.execute(FROM_SCHEMA_2).rowcount
                self._db.execute("DROP TABLE keyword")
                log.info("ledger upgraded: %d keyword rows moved to the indexed docs table", moved)
            self._commit()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _has_table(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None

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
            self._db.execute(f"DELETE FROM {table} WHERE collection = ?", (name,))  # noqa: S608 - fixed names
        self._db.execute("DELETE FROM collections WHERE name = ?", (name,))
        self._commit()

    # -- sources and chunks --------------------------------------------------------------

    def is_current(self, collection: str, source: SourceFile) -> bool:
        row = self._db.execute(
            "SELECT size, mtime_ns FROM sources WHERE collection = ? AND rel_path = ?", (collection, source.rel_path)
        ).fetchone()
        return row is not None and tuple(row) == (source.size, source.mtime_ns)

    def chunk_hashes(self, collection: str, rel_path: str) -> dict[str, str]:
        rows = self._db.execute("SELECT id, content_hash FROM chunks WHERE collection = ? AND rel_path = ?", (collection, rel_path))
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

    def mark_pending(self, collection: str, rel_path: str, chunks: Iterable[Chunk]) -> None:
        """Record ids about to be written to Chroma, before they are."""
        rows = [(collection, c.id, rel_path, PENDING, *_owner(c)) for c in chunks]
        self._transaction()
        self._db.executemany("INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._commit()

    def record(
        self, collection: str, source: SourceFile, session_id: str, chunks: Sequence[Chunk], removed: Sequence[str] = (), *, complete: bool = True
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

    def _replace_docs(self, collection: str, drop_ids: Sequence[str], chunks: Sequence[Chunk]) -> None:
        """Text and metadata of stored chunks; the triggers keep the FTS5 index in step."""
        for start in range(0, len(drop_ids), 500):
            part = drop_ids[start : start + 500]
            marks = ",".join("?" * len(part))
            self._db.execute(f"DELETE FROM docs WHERE collection = ? AND id IN ({marks})", (collection, *part))
        rows = [_doc_row(collection, c) for c in chunks]
        self._db.executemany(f"INSERT OR IGNORE INTO docs ({DOC_COLUMNS}) VALUES ({','.join('?' * 13)})", rows)

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

    def rebuild_keywords(self) -> None:
        """Rebuild the FTS5 index from the docs table (doctor --repair)."""
        self._db.execute("INSERT INTO words(words) VALUES ('rebuild')")

    def sources_of(self, collection: str, ids: Sequence[str]) -> set[str]:
        """The transcripts (rel_path) whose chunk records hold these ids."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self._db.execute(f"SELECT rel_path FROM chunks WHERE collection = ? AND id IN ({','.join('?' * len(part))})", (collection, *part))
            found.update(row[0] for row in rows)
        return found

    def skip_session(self, session_id: str) -> bool:
        """Remember a session marked `session-search: skip`; True if it was not known yet."""
        return self._db.execute("INSERT OR IGNORE INTO skipped_sessions VALUES (?)", (session_id,)).rowcount > 0

    def skipped_sessions(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT session_id FROM skipped_sessions")}

    def set_title(self, session_id: str, title: str) -> None:
        """The session's latest title; kept across collections, since it does not depend on the model."""
        self._db.execute("INSERT OR REPLACE INTO titles VALUES (?, ?)", (session_id, title))

    def titles(self, session_ids: Iterable[str]) -> dict[str, str]:
        """Titles of those sessions that have one."""
        wanted = list(dict.fromkeys(session_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            rows = self._reading().execute(f"SELECT session_id, title FROM titles WHERE session_id IN ({','.join('?' * len(part))})", part)
            found.update(dict(rows))
        return found

    def sessions(
        self, collection: str, having_sql: str, params: Sequence[object], agent: str | None, limit: int, offset: int
    ) -> list[tuple[object, ...]]:
        """One row per session, latest activity first: (session_id, agent, project, git_branch, first
        epoch, last epoch, exchanges, subagents); having_sql filters the groups (`AND ...`)."""
        where, args = ("", [collection]) if agent is None else (" AND d.agent = ?", [collection, agent])
        sql = f"""SELECT d.session_id, min(d.agent),
                coalesce(max(CASE WHEN d.is_sidechain = 0 THEN d.project END), max(d.project)),
                coalesce(max(CASE WHEN d.is_sidechain = 0 THEN d.git_branch END), max(d.git_branch)),
                min(d.ts_epoch), max(d.ts_epoch),
                sum(d.is_sidechain = 0 AND d.kind IN ('exchange', 'prompt') AND coalesce(json_extract(d.meta, '$.window'), 0) = 0),
                count(DISTINCT CASE WHEN d.agent_id != '' THEN d.agent_id END)
            FROM docs d WHERE d.collection = ?{where} GROUP BY d.session_id HAVING 1{having_sql}
            ORDER BY max(d.ts_epoch) DESC, d.session_id LIMIT ? OFFSET ?"""
        return [tuple(row) for row in self._reading().execute(sql, (*args, *params, limit, offset))]

    def first_prompt(self, collection: str, session_id: str) -> str:
        """The text of the session's first main-conversation exchange or prompt; "" if none."""
        row = self._reading().execute(
            "SELECT text FROM docs WHERE collection = ? AND session_id = ? AND is_sidechain = 0 AND kind IN ('exchange', 'prompt')"
            " ORDER BY ts_epoch, rowid LIMIT 1", (collection, session_id),
        ).fetchone()
        return str(row[0]) if row else ""

    def session_sources(self, collection: str, session_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT rel_path FROM sources WHERE collection = ? AND session_id = ? ORDER BY rel_path", (collection, session_id)
        )
        return [row[0] for row in rows]

    def session_chunks(self, collection: str, session_id: str) -> list[tuple[str, str]]:
        """(text, metadata JSON) of a session's keyword rows: what is left of a deleted transcript."""
        rows = self._db.execute("SELECT text, meta FROM docs WHERE collection = ? AND session_id = ?", (collection, session_id))
        return [tuple(row) for row in rows]

    def chunk_meta(self, collection: str, chunk_id: str) -> str | None:
        row = self._db.execute("SELECT meta FROM docs WHERE collection = ? AND id = ?", (collection, chunk_id)).fetchone()
        return row[0] if row else None

    def filter_values(self, collection: str) -> dict[str, set[str]]:
        """Every branch and tool of the collection's chunks: what a filter may name."""
        values: dict[str, set[str]] = {"git_branch": set(), "tool": set(), "kind": set()}
        rows = self._db.execute("SELECT DISTINCT git_branch, tools, kind FROM docs WHERE collection = ?", (collection,))
        for branch, tools, kind in rows:
            values["git_branch"].add(branch)
            values["kind"].add(kind)
            values["tool"].update(t for t in str(tools).split(",") if t)
        return values

    def keyword_search(
        self, collection: str, match: str, where_sql: str, params: Sequence[object], limit: int, span: tuple[int, int] | None = None
    ) -> list[tuple[int, float]]:
        """(doc rowid, bm25) of the best keyword matches, lower bm25 better; where_sql filters docs `d`.

        The plan follows the filter, all three giving the same ranking: with none, FTS5 sorts by
        rank itself and the join stops at `limit`; a session's rows, inserted together, are a
        rowid span FTS5 seeks to; other filters are checked per match and SQLite sorts.
        """
        join = "FROM words JOIN docs d ON d.rowid = words.rowid WHERE words MATCH ? AND d.collection = ?"
        if span is None and not where_sql:
            sql, args = f"SELECT words.rowid, words.rank {join} ORDER BY words.rank LIMIT ?", (match, collection, limit)
        elif span is None:
            sql, args = f"SELECT words.rowid, bm25(words) AS r {join}{where_sql} ORDER BY r LIMIT ?", (match, collection, *params, limit)
        else:
            sql = f"SELECT words.rowid, bm25(words) AS r {join} AND words.rowid BETWEEN ? AND ?{where_sql} ORDER BY r LIMIT ?"
            args = (match, collection, *span, *params, limit)
        return [(int(rowid), float(rank)) for rowid, rank in self._reading().execute(sql, args)]

    def session_span(self, collection: str, session_id: str) -> tuple[int, int] | None:
        """The lowest and highest doc rowid of a session: what keyword_search seeks to."""
        row = self._reading().execute("SELECT min(rowid), max(rowid) FROM docs WHERE collection = ? AND session_id = ?", (collection, session_id)).fetchone()
        return (int(row[0]), int(row[1])) if row and row[0] is not None else None

    def docs_at(self, rowids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """(id, text, metadata JSON) by doc rowid."""
        found: dict[int, tuple[str, str, str]] = {}
        for start in range(0, len(rowids), 500):
            part = rowids[start : start + 500]
            rows = self._reading().execute(f"SELECT rowid, id, text, meta FROM docs WHERE rowid IN ({','.join('?' * len(part))})", part)
            found.update((rowid, (id_, text, meta)) for rowid, id_, text, meta in rows)
        return found

    def docs_for(self, collection: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(text, metadata JSON) by chunk id; ids not recorded (yet) are left out."""
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self._db.execute(
                f"SELECT id, text, meta FROM docs WHERE collection = ? AND id IN ({','.join('?' * len(part))})", (collection, *part)
            )
            found.update((id_, (text, meta)) for id_, text, meta in rows)
        return found

    def matching_ids(self, collection: str, where_sql: str, params: Sequence[object], limit: int) -> list[str] | None:
        """Ids of the chunks the filters keep, or None when there are more than limit."""
        rows = self._db.execute(f"SELECT id FROM docs d WHERE d.collection = ?{where_sql} LIMIT ?", (collection, *params, limit + 1)).fetchall()
        return None if len(rows) > limit else [row[0] for row in rows]

    def has_session(self, collection: str, session_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM docs WHERE collection = ? AND session_id = ? LIMIT 1", (collection, session_id)).fetchone() is not None

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

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
