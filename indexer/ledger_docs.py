"""The ledger's docs table and its keyword index: every stored chunk's text and metadata,
the filter columns a search narrows by, and the FTS5 index over the texts. All SQL over
`docs` lives here, including how filters and a list of tools are encoded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple

from indexer.chunk import Chunk, MetadataValue
from indexer.ledger_schema import DEFAULT_AGENT
from indexer.terms import joined_words, telling_terms

if TYPE_CHECKING:
    from indexer.models import ListSessionsRequest, SearchRequest

DOC_COLUMNS = "collection, id, session_id, project, git_branch, ts_epoch, kind, agent_id, is_sidechain, tools, meta, text, agent"
BATCH = 500  # ids per `IN (...)`: below SQLite's variable limit
KeywordTable = Literal["words", "stems"]  # FTS5 over docs.text: words as written, and porter-stemmed
KEYWORD_TABLES: tuple[KeywordTable, ...] = ("words", "stems")


def _str(values: Mapping[str, MetadataValue], key: str) -> str:
    value = values.get(key)
    return value if isinstance(value, str) else ""


def _int(values: Mapping[str, MetadataValue], key: str) -> int:
    value = values.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class ChunkMeta:
    """A stored chunk's metadata, read back once: typed fields for what the service reads, and
    every value as stored (`values`), which ranking and re-embedding pass on unchanged."""

    session_id: str = ""
    project: str = ""
    git_branch: str = ""
    timestamp: str = ""
    kind: str = ""
    agent: str = DEFAULT_AGENT
    agent_id: str = ""
    first_uuid: str = ""
    source_path: str = ""
    line_start: int = 0
    window: int = 0
    values: dict[str, MetadataValue] = field(default_factory=dict)

    @classmethod
    def of(cls, values: dict[str, MetadataValue]) -> ChunkMeta:
        return cls(
            session_id=_str(values, "session_id"),
            project=_str(values, "project"),
            git_branch=_str(values, "git_branch"),
            timestamp=_str(values, "timestamp"),
            kind=_str(values, "kind"),
            agent=_str(values, "agent") or DEFAULT_AGENT,
            agent_id=_str(values, "agent_id"),
            first_uuid=_str(values, "first_uuid"),
            source_path=_str(values, "source_path"),
            line_start=_int(values, "line_start"),
            window=_int(values, "window"),
            values=values,
        )

    @classmethod
    def from_json(cls, text: str) -> ChunkMeta:
        return cls.of(json.loads(text))


@dataclass(frozen=True)
class StoredDoc:
    """One docs row: a stored chunk's id, text and metadata as stored; `meta` types it on first
    use (a search reads 200 rows and types none of them)."""

    id: str
    text: str
    values: dict[str, MetadataValue]

    @cached_property
    def meta(self) -> ChunkMeta:
        return ChunkMeta.of(self.values)

    def chunk(self) -> Chunk:
        return Chunk(self.id, self.text, self.values)


class SessionRow(NamedTuple):
    """One session as the ledger sums it up (epochs in seconds)."""

    session_id: str
    agent: str
    project: str | None
    git_branch: str | None
    first: float | None
    last: float | None
    exchanges: int | None
    subagents: int | None


@dataclass(frozen=True, slots=True)
class DocsFilter:
    """A search's filters as SQL over docs `d` (`AND ...` clauses), and their parameters; "" for none."""

    sql: str = ""
    params: tuple[object, ...] = ()


def _tools_column(tools: MetadataValue | None) -> str:
    """A chunk's tools as one column: `,Bash,Edit,`, so a tool filter is one LIKE `%,Bash,%`."""
    return "," + ",".join(tools) + "," if isinstance(tools, list) else ","


def doc_row(collection: str, chunk: Chunk) -> tuple[object, ...]:
    meta = chunk.metadata
    return (
        collection,
        chunk.id,
        meta.get("session_id", ""),
        meta.get("project", ""),
        meta.get("git_branch", ""),
        meta.get("ts_epoch"),
        meta.get("kind", ""),
        meta.get("agent_id", ""),
        int(bool(meta.get("is_sidechain"))),
        _tools_column(meta.get("tools")),
        json.dumps(meta),
        chunk.text,
        meta.get("agent") or DEFAULT_AGENT,
    )


def docs_filter(request: SearchRequest, projects: list[str] | None) -> DocsFilter:
    """The request's filters as SQL over the docs table, `d`."""
    sql: list[str] = []
    params: list[object] = []
    if projects:
        sql.append(f"d.project IN ({','.join('?' * len(projects))})")
        params += projects
    for column, value in (("session_id", request.session_id), ("git_branch", request.git_branch), ("kind", request.kind)):
        if value:
            sql.append(f"d.{column} = ?")
            params.append(value)
    if request.tool:
        sql.append("d.tools LIKE ?")
        params.append(f"%,{request.tool},%")
    if not request.include_subagents:
        sql.append("d.is_sidechain = 0")
    if request.agent:
        sql.append("d.agent = ?")
        params.append(request.agent)
    if (since := request.since_epoch()) is not None:
        sql.append("d.ts_epoch >= ?")
        params.append(since)
    if (until := request.until_epoch()) is not None:
        sql.append("d.ts_epoch <= ?")
        params.append(until)
    return DocsFilter("".join(f" AND {clause}" for clause in sql), tuple(params))


def session_filter(request: ListSessionsRequest) -> DocsFilter:
    """Group filters for list_sessions: a session is kept when any of its chunks matches project
    or branch, and when its span of activity overlaps since..until."""
    sql, params = "", []  # type: tuple[str, list[object]]
    if request.project:
        sql += " AND sum(instr(lower(d.project), ?) > 0) > 0"
        params.append(request.project.strip().rstrip("/").lower())
    if request.git_branch:
        sql += " AND sum(d.git_branch = ?) > 0"
        params.append(request.git_branch)
    if (since := request.since_epoch()) is not None:
        sql += " AND max(d.ts_epoch) >= ?"
        params.append(since)
    if (until := request.until_epoch()) is not None:
        sql += " AND min(d.ts_epoch) <= ?"
        params.append(until)
    return DocsFilter(sql, tuple(params))


def fts_queries(query: str) -> tuple[str | None, str | None]:
    """FTS5 MATCH expressions: all of the query's telling words, then any of them (None for one
    word: nothing is wider, and a word many chunks hold needs no stemmed ranking beside it).

    Each word is quoted, so punctuation is harmless. Common words are left out when others
    remain: BM25 gives them almost no weight, but they match nearly every chunk. Asking for
    all words first keeps the set FTS5 must rank small (at 100k chunks, ranking every chunk
    that matches any word took hundreds of milliseconds).
    """
    quoted = [f'"{t}"' for t in telling_terms(query)]
    if not quoted:
        return None, None
    return " ".join(quoted), (" OR ".join(quoted) if len(quoted) > 1 else None)


def fts_phrases(query: str) -> str | None:
    """An FTS5 MATCH for chunks holding any of the words the query joins with hyphens, joined:
    each as a phrase (`continue-on-error` as "continue on error", next to each other). None when
    the query joins none."""
    phrases = [f'"{word.replace("-", " ")}"' for word in joined_words(query)]
    return " OR ".join(phrases) if phrases else None


def _batches(items: Sequence[object]) -> Iterable[tuple[str, Sequence[object]]]:
    """(`?,?,...`, part) for each slice of items small enough for one `IN (...)`."""
    for start in range(0, len(items), BATCH):
        part = items[start : start + BATCH]
        yield ",".join("?" * len(part)), part


class DocsIndex:
    """The ledger's reads and writes of docs and the keyword index (a part of `Ledger`)."""

    _db: sqlite3.Connection

    def _reading(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _replace_docs(self, collection: str, drop_ids: Sequence[str], chunks: Sequence[Chunk]) -> None:
        """Text and metadata of stored chunks; the triggers keep the FTS5 index in step."""
        for marks, part in _batches(drop_ids):
            self._db.execute(f"DELETE FROM docs WHERE collection = ? AND id IN ({marks})", (collection, *part))
        rows = [doc_row(collection, c) for c in chunks]
        self._db.executemany(f"INSERT OR IGNORE INTO docs ({DOC_COLUMNS}) VALUES ({','.join('?' * 13)})", rows)

    def rebuild_keywords(self) -> None:
        """Rebuild both FTS5 indexes from the docs table (doctor --repair)."""
        for table in KEYWORD_TABLES:
            self._db.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")

    def keyword_search(
        self,
        collection: str,
        match: str,
        where: DocsFilter,
        limit: int,
        span: tuple[int, int] | None = None,
        table: KeywordTable = "words",
        holding: str | None = None,
    ) -> list[tuple[int, float]]:
        """(doc rowid, bm25) of the best keyword matches in `table` (words as written, or stems), lower bm25 better;
        with `holding`, only of the chunks that also match it (scored by `match` alone).

        The plan follows the filter, all giving the same ranking:
        - none, and no other collection's rows in the ledger: SQLite keeps the best `limit` as
          FTS5 scores its matches, and only those are read from docs (at 100k chunks, 0.6-0.8x
          the time of FTS5 sorting by rank itself, or of checking each match's collection);
        - none, with another collection's rows (a rebuild for a new model): FTS5 sorts by rank
          and the join checks the collection until it has `limit`;
        - a session: its rows, inserted together, are a rowid span FTS5 seeks to;
        - other filters are checked per match and SQLite sorts.
        `holding` is checked per match against its own matches, listed once: the `+` keeps SQLite
        from handing the rowids to FTS5, which looked each up on its own (minutes at 100k chunks).
        """
        if table not in KEYWORD_TABLES:
            raise ValueError(f"no keyword index {table!r}")
        matching = f"{table} MATCH ?"
        matched: tuple[object, ...] = (match,)
        if holding is not None:
            matching += f" AND +{table}.rowid IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"
            matched = (match, holding)
        join = f"FROM {table} JOIN docs d ON d.rowid = {table}.rowid WHERE {matching} AND d.collection = ?"
        args: tuple[object, ...]
        if span is None and not where.sql and self._holds_only(collection):
            sql = (
                f"SELECT best.rowid, best.r FROM (SELECT rowid, bm25({table}) AS r FROM {table} WHERE {matching}"
                " ORDER BY r LIMIT ?) best JOIN docs d ON d.rowid = best.rowid WHERE d.collection = ? ORDER BY best.r"
            )
            args = (*matched, limit, collection)
        elif span is None and not where.sql:
            sql, args = f"SELECT {table}.rowid, {table}.rank {join} ORDER BY {table}.rank LIMIT ?", (*matched, collection, limit)
        elif span is None:
            sql, args = (
                f"SELECT {table}.rowid, bm25({table}) AS r {join}{where.sql} ORDER BY r LIMIT ?",
                (*matched, collection, *where.params, limit),
            )
        else:
            sql = (
                f"SELECT {table}.rowid, bm25({table}) AS r {join} AND {table}.rowid BETWEEN ? AND ?{where.sql} ORDER BY r LIMIT ?"
            )
            args = (*matched, collection, *span, *where.params, limit)
        return [(int(rowid), float(rank)) for rowid, rank in self._reading().execute(sql, args)]

    def _holds_only(self, collection: str) -> bool:
        """Whether every doc is this collection's: two seeks in an index led by the collection."""
        other = "SELECT EXISTS (SELECT 1 FROM docs WHERE collection < ?) OR EXISTS (SELECT 1 FROM docs WHERE collection > ?)"
        return not self._reading().execute(other, (collection, collection)).fetchone()[0]

    def session_span(self, collection: str, session_id: str) -> tuple[int, int] | None:
        """The lowest and highest doc rowid of a session: what keyword_search seeks to."""
        row = (
            self._reading()
            .execute("SELECT min(rowid), max(rowid) FROM docs WHERE collection = ? AND session_id = ?", (collection, session_id))
            .fetchone()
        )
        return (int(row[0]), int(row[1])) if row and row[0] is not None else None

    def docs_at(self, rowids: Sequence[int]) -> dict[int, StoredDoc]:
        """Docs by rowid."""
        found: dict[int, StoredDoc] = {}
        for marks, part in _batches(rowids):
            rows = self._reading().execute(f"SELECT rowid, id, text, meta FROM docs WHERE rowid IN ({marks})", part)
            found.update((rowid, StoredDoc(id_, text, json.loads(meta))) for rowid, id_, text, meta in rows)
        return found

    def docs_for(self, collection: str, ids: Sequence[str]) -> dict[str, StoredDoc]:
        """Docs by chunk id; ids not recorded (yet) are left out. Safe in a worker thread."""
        found: dict[str, StoredDoc] = {}
        for marks, part in _batches(ids):
            rows = self._reading().execute(
                f"SELECT id, text, meta FROM docs WHERE collection = ? AND id IN ({marks})", (collection, *part)
            )
            found.update((id_, StoredDoc(id_, text, json.loads(meta))) for id_, text, meta in rows)
        return found

    def matching_ids(self, collection: str, where: DocsFilter, limit: int) -> list[str] | None:
        """Ids of the chunks the filters keep, or None when there are more than limit."""
        rows = self._db.execute(
            f"SELECT id FROM docs d WHERE d.collection = ?{where.sql} LIMIT ?", (collection, *where.params, limit + 1)
        ).fetchall()
        return None if len(rows) > limit else [row[0] for row in rows]

    def newest_doc(self, collection: str) -> str | None:
        """The id of the chunk recorded last: its vector was written before it was recorded."""
        # `+collection`: walk the rows newest first and stop at the first (an index on collection sorts them all).
        row = self._db.execute("SELECT id FROM docs WHERE +collection = ? ORDER BY rowid DESC LIMIT 1", (collection,)).fetchone()
        return str(row[0]) if row else None

    def has_session(self, collection: str, session_id: str) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM docs WHERE collection = ? AND session_id = ? LIMIT 1", (collection, session_id)
            ).fetchone()
            is not None
        )

    def filter_values(self, collection: str) -> dict[str, set[str]]:
        """Every branch, tool and kind of the collection's chunks: what a filter may name."""
        values: dict[str, set[str]] = {"git_branch": set(), "tool": set(), "kind": set()}
        rows = self._db.execute("SELECT DISTINCT git_branch, tools, kind FROM docs WHERE collection = ?", (collection,))
        for branch, tools, kind in rows:
            values["git_branch"].add(branch)
            values["kind"].add(kind)
            values["tool"].update(t for t in str(tools).split(",") if t)
        return values

    def agents(self, collection: str) -> set[str]:
        """The agents whose chunks the collection holds."""
        return {row[0] for row in self._db.execute("SELECT DISTINCT agent FROM docs WHERE collection = ?", (collection,))}

    def session_docs(self, collection: str, session_id: str) -> list[StoredDoc]:
        """A session's stored chunks: what is left of a deleted transcript."""
        rows = self._db.execute(
            "SELECT id, text, meta FROM docs WHERE collection = ? AND session_id = ?", (collection, session_id)
        )
        return [StoredDoc(id_, text, json.loads(meta)) for id_, text, meta in rows]

    def chunk_meta(self, collection: str, chunk_id: str) -> ChunkMeta | None:
        row = self._db.execute("SELECT meta FROM docs WHERE collection = ? AND id = ?", (collection, chunk_id)).fetchone()
        return ChunkMeta.from_json(row[0]) if row else None

    def sessions(self, collection: str, having: DocsFilter, agent: str | None, limit: int, offset: int) -> list[SessionRow]:
        """One row per session, latest activity first: (session_id, agent, project, git_branch, first
        epoch, last epoch, exchanges, subagents); `having` filters the groups."""
        where, args = ("", [collection]) if agent is None else (" AND d.agent = ?", [collection, agent])
        sql = f"""SELECT d.session_id, min(d.agent),
                coalesce(max(CASE WHEN d.is_sidechain = 0 THEN d.project END), max(d.project)),
                coalesce(max(CASE WHEN d.is_sidechain = 0 THEN d.git_branch END), max(d.git_branch)),
                min(d.ts_epoch), max(d.ts_epoch),
                sum(d.is_sidechain = 0 AND d.kind IN ('exchange', 'prompt') AND coalesce(json_extract(d.meta, '$.window'), 0) = 0),
                count(DISTINCT CASE WHEN d.agent_id != '' THEN d.agent_id END)
            FROM docs d WHERE d.collection = ?{where} GROUP BY d.session_id HAVING 1{having.sql}
            ORDER BY max(d.ts_epoch) DESC, d.session_id LIMIT ? OFFSET ?"""
        return [SessionRow(*row) for row in self._reading().execute(sql, (*args, *having.params, limit, offset))]

    def first_prompt(self, collection: str, session_id: str) -> str:
        """The text of the session's first main-conversation exchange or prompt; "" if none."""
        row = (
            self._reading()
            .execute(
                "SELECT text FROM docs WHERE collection = ? AND session_id = ? AND is_sidechain = 0 AND kind IN ('exchange', 'prompt')"
                " ORDER BY ts_epoch, rowid LIMIT 1",
                (collection, session_id),
            )
            .fetchone()
        )
        return str(row[0]) if row else ""

    def set_title(self, session_id: str, title: str) -> None:
        """The session's latest title; kept across collections, since it does not depend on the model."""
        self._db.execute("INSERT OR REPLACE INTO titles VALUES (?, ?)", (session_id, title))

    def titles(self, session_ids: Iterable[str]) -> dict[str, str]:
        """Titles of those sessions that have one."""
        wanted = list(dict.fromkeys(session_ids))
        found: dict[str, str] = {}
        for marks, part in _batches(wanted):
            rows = self._reading().execute(f"SELECT session_id, title FROM titles WHERE session_id IN ({marks})", part)
            found.update(dict(rows))
        return found
