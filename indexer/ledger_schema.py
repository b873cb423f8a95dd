"""The ledger's schema as ordered, named migrations, tracked with `PRAGMA user_version`
(as simonw/llm's embeddings_migrations.py does).

Ledgers written before the version was tracked all read 0, whatever their format (1-4:
a format-2 ledger kept keyword rows in one FTS5 table `keyword`; format 3 moved them to
the indexed `docs` table; format 4 added `docs.agent` and session titles). So the first
migrations look at what exists before changing it, and a version-0 ledger of any of those
formats ends at the latest with no row lost.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)
Migration = Callable[[sqlite3.Connection], None]
DEFAULT_AGENT = "claude-code"

_TABLES = (
    """CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY, identity TEXT NOT NULL, query_template TEXT NOT NULL, created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sources (
    collection TEXT NOT NULL, rel_path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    session_id TEXT NOT NULL, chunks INTEGER NOT NULL, indexed_at REAL NOT NULL,
    PRIMARY KEY (collection, rel_path))""",
    """CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL, id TEXT NOT NULL, rel_path TEXT NOT NULL, content_hash TEXT NOT NULL,
    session_id TEXT NOT NULL, project TEXT NOT NULL,
    PRIMARY KEY (collection, id, rel_path))""",
    "CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(collection, rel_path)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS skipped_sessions (session_id TEXT PRIMARY KEY)",
)
# Format 3's docs: one row per stored chunk, its filter columns indexed, FTS5 over its text.
_DOCS = (
    """CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,
    project TEXT NOT NULL, git_branch TEXT NOT NULL, ts_epoch INTEGER, kind TEXT NOT NULL, agent_id TEXT NOT NULL,
    is_sidechain INTEGER NOT NULL, tools TEXT NOT NULL, meta TEXT NOT NULL, text TEXT NOT NULL,
    UNIQUE (collection, id))""",
    "CREATE INDEX IF NOT EXISTS docs_by_session ON docs(collection, session_id, id)",
    "CREATE INDEX IF NOT EXISTS docs_by_project ON docs(collection, project, ts_epoch, id)",
    "CREATE INDEX IF NOT EXISTS docs_by_time ON docs(collection, ts_epoch, id)",
    "CREATE INDEX IF NOT EXISTS docs_by_filters ON docs(collection, is_sidechain, kind, git_branch, project, ts_epoch, session_id, tools, id)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(
    text, content = 'docs', content_rowid = 'rowid', tokenize = "unicode61 tokenchars '_'")""",
    """CREATE TRIGGER IF NOT EXISTS docs_added AFTER INSERT ON docs BEGIN
    INSERT INTO words(rowid, text) VALUES (new.rowid, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS docs_removed AFTER DELETE ON docs BEGIN
    INSERT INTO words(words, rowid, text) VALUES ('delete', old.rowid, old.text); END""",
)
_FORMAT_3_COLUMNS = "collection, id, session_id, project, git_branch, ts_epoch, kind, agent_id, is_sidechain, tools, meta, text"
# A format-2 ledger kept its keyword rows in one FTS5 table, filter columns unindexed.
_FROM_KEYWORD = f"""INSERT OR IGNORE INTO docs ({_FORMAT_3_COLUMNS}) SELECT collection, id, session_id, project, git_branch,
    ts_epoch, kind, agent_id, coalesce(json_extract(meta, '$.is_sidechain'), 0), tools, meta, text FROM keyword"""


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def m001_tables(db: sqlite3.Connection) -> None:
    """Collections, sources, chunk records, meta and skipped sessions."""
    for statement in _TABLES:
        db.execute(statement)


def m002_docs_and_keyword_index(db: sqlite3.Connection) -> None:
    """The docs table with its FTS5 index; a format-2 ledger's keyword rows move into it."""
    for statement in _DOCS:
        db.execute(statement)
    if _has_table(db, "keyword"):
        moved = db.execute(_FROM_KEYWORD).rowcount
        db.execute("DROP TABLE keyword")
        log.info("ledger upgraded: %d keyword rows moved to the indexed docs table", moved)


def m003_agents_and_titles(db: sqlite3.Connection) -> None:
    """docs.agent (rows from before agents are Claude Code's) and session titles."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(docs)")}
    if "agent" not in columns:
        db.execute(f"ALTER TABLE docs ADD COLUMN agent TEXT NOT NULL DEFAULT '{DEFAULT_AGENT}'")
    db.execute("CREATE INDEX IF NOT EXISTS docs_by_agent ON docs(collection, agent, ts_epoch, id)")
    db.execute("CREATE TABLE IF NOT EXISTS titles (session_id TEXT PRIMARY KEY, title TEXT NOT NULL)")


# Stemmed keywords (porter: "researching" finds "researched"), read beside the unstemmed `words`
# for questions in words (README, "Retrieval quality"). Same external content: no text is copied.
_STEMS = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS stems USING fts5(
    text, content = 'docs', content_rowid = 'rowid', tokenize = "porter unicode61 tokenchars '_'")""",
    """CREATE TRIGGER IF NOT EXISTS docs_added_stems AFTER INSERT ON docs BEGIN
    INSERT INTO stems(rowid, text) VALUES (new.rowid, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS docs_removed_stems AFTER DELETE ON docs BEGIN
    INSERT INTO stems(stems, rowid, text) VALUES ('delete', old.rowid, old.text); END""",
)


def m004_stemmed_keyword_index(db: sqlite3.Connection) -> None:
    """The stemmed keyword index, built from the docs already stored."""
    for statement in _STEMS:
        db.execute(statement)
    db.execute("INSERT INTO stems(stems) VALUES ('rebuild')")
    docs = db.execute("SELECT count(*) FROM docs").fetchone()[0]
    if docs:
        log.info("ledger upgraded: %d stored chunks indexed for stemmed keyword search", docs)


MIGRATIONS: tuple[Migration, ...] = (
    m001_tables,
    m002_docs_and_keyword_index,
    m003_agents_and_titles,
    m004_stemmed_keyword_index,
)
LATEST = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations a ledger lacks, in one transaction: other processes opening it wait
    on the write lock, then find it current. A ledger newer than this code is refused."""
    if version(db) == LATEST:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        found = version(db)  # again, under the lock: another process may have migrated meanwhile
        if found > LATEST:
            raise sqlite3.DatabaseError(
                f"the ledger has schema version {found}; this session-search knows up to {LATEST}: upgrade it"
            )
        for migration in MIGRATIONS[found:]:
            migration(db)
        db.execute(f"PRAGMA user_version = {LATEST}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
