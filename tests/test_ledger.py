"""The ledger's schema migrations: ledgers of every earlier format open, upgraded in place,
with nothing lost; a ledger from a newer release is refused. Each old ledger is built by
hand, as that release wrote it, and then read through the Ledger's API only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from indexer.chunk import Chunk, MetadataValue
from indexer.ledger import Ledger
from indexer.ledger_docs import DocsFilter
from indexer.ledger_schema import LATEST
from indexer.retrieve import Retriever
from indexer.sources import SourceFile

TABLES_BEFORE_DOCS = """
CREATE TABLE collections (name TEXT PRIMARY KEY, identity TEXT NOT NULL, query_template TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE sources (collection TEXT NOT NULL, rel_path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    session_id TEXT NOT NULL, chunks INTEGER NOT NULL, indexed_at REAL NOT NULL, PRIMARY KEY (collection, rel_path));
CREATE TABLE chunks (collection TEXT NOT NULL, id TEXT NOT NULL, rel_path TEXT NOT NULL, content_hash TEXT NOT NULL,
    session_id TEXT NOT NULL, project TEXT NOT NULL, PRIMARY KEY (collection, id, rel_path));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO collections VALUES ('c1', '{}', 'query: {query}', 0);
INSERT INTO meta VALUES ('active', 'c1');
INSERT INTO sources VALUES ('c1', '-w-api/s1.jsonl', 120, 7, 's1', 2, 0);
INSERT INTO chunks VALUES ('c1', 'k1', '-w-api/s1.jsonl', 'h1', 's1', '/w/api');
INSERT INTO chunks VALUES ('c1', 'k2', '-w-api/s1.jsonl', 'h2', 's1', '/w/api');
"""
# Format 2 kept the keyword rows in one FTS5 table; format 3 in docs, without the agent column and titles.
FORMAT_2 = """
CREATE VIRTUAL TABLE keyword USING fts5(text, collection UNINDEXED, id UNINDEXED, session_id UNINDEXED, project UNINDEXED,
    git_branch UNINDEXED, ts_epoch UNINDEXED, kind UNINDEXED, agent_id UNINDEXED, tools UNINDEXED, meta UNINDEXED,
    tokenize = "unicode61 tokenchars '_'");
"""
FORMAT_3 = """
CREATE TABLE docs (rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL,
    project TEXT NOT NULL, git_branch TEXT NOT NULL, ts_epoch INTEGER, kind TEXT NOT NULL, agent_id TEXT NOT NULL,
    is_sidechain INTEGER NOT NULL, tools TEXT NOT NULL, meta TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (collection, id));
CREATE VIRTUAL TABLE words USING fts5(text, content = 'docs', content_rowid = 'rowid', tokenize = "unicode61 tokenchars '_'");
CREATE TRIGGER docs_added AFTER INSERT ON docs BEGIN INSERT INTO words(rowid, text) VALUES (new.rowid, new.text); END;
"""
ROWS = [
    (
        "k1",
        "User: why does the zeppelin hangar door jam",
        {
            "session_id": "s1",
            "project": "/w/api",
            "git_branch": "main",
            "ts_epoch": 100,
            "kind": "exchange",
            "agent_id": "",
            "is_sidechain": False,
            "tools": ["Bash"],
            "first_uuid": "u1",
            "line_start": 1,
            "window": 0,
        },
    ),
    (
        "k2",
        "User: a subagent checked the hinges",
        {
            "session_id": "s1",
            "project": "/w/api",
            "git_branch": "main",
            "ts_epoch": 200,
            "kind": "exchange",
            "agent_id": "a1",
            "is_sidechain": True,
            "first_uuid": "u2",
            "line_start": 1,
            "window": 0,
        },
    ),
]


def _format_2(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(TABLES_BEFORE_DOCS + FORMAT_2)
        for id_, text, meta in ROWS:
            tools = "," + ",".join(meta.get("tools", [])) + ","
            db.execute(
                "INSERT INTO keyword VALUES (?, 'c1', ?, 's1', '/w/api', 'main', ?, 'exchange', ?, ?, ?)",
                (text, id_, meta["ts_epoch"], meta["agent_id"], tools, json.dumps(meta)),
            )


def _format_3(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(TABLES_BEFORE_DOCS + "CREATE TABLE skipped_sessions (session_id TEXT PRIMARY KEY);" + FORMAT_3)
        for id_, text, meta in ROWS:
            tools = "," + ",".join(meta.get("tools", [])) + ","
            db.execute(
                "INSERT INTO docs (collection, id, session_id, project, git_branch, ts_epoch, kind, agent_id, is_sidechain, tools, meta, text)"
                " VALUES ('c1', ?, 's1', '/w/api', 'main', ?, 'exchange', ?, ?, ?, ?, ?)",
                (id_, meta["ts_epoch"], meta["agent_id"], int(meta["is_sidechain"]), tools, json.dumps(meta), text),
            )


def _format_4(path: Path) -> None:
    """The last release before migrations were tracked: format 3 plus docs.agent and titles, user_version 0."""
    _format_3(path)
    with sqlite3.connect(path) as db:
        db.executescript("""ALTER TABLE docs ADD COLUMN agent TEXT NOT NULL DEFAULT 'claude-code';
            CREATE TABLE titles (session_id TEXT PRIMARY KEY, title TEXT NOT NULL);""")


@pytest.mark.parametrize("build", [_format_2, _format_3, _format_4], ids=["format-2", "format-3", "format-4"])
def test_an_older_ledger_is_migrated_with_nothing_lost(build: object, tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    build(path)  # type: ignore[operator]
    ledger = Ledger(path)
    try:
        assert ledger.schema_version == LATEST
        assert ledger.active == "c1" and ledger.building is None
        source = SourceFile(tmp_path / "s1.jsonl", "-w-api/s1.jsonl", "s1", None, None, 120, 7)
        assert ledger.is_current("c1", source) and ledger.known_sources("c1") == {"-w-api/s1.jsonl"}
        docs = ledger.docs_for("c1", ["k1", "k2"])
        assert {d.text for d in docs.values()} == {text for _, text, _ in ROWS}
        assert docs["k2"].meta.agent_id == "a1" and docs["k1"].meta.first_uuid == "u1" and docs["k1"].meta.agent == "claude-code"
        assert ledger.ids("c1") == ({"k1", "k2"}, {"k1", "k2"})  # the keyword index holds every chunk
        found = ledger.keyword_search("c1", '"zeppelin"', DocsFilter(), 10)
        assert [ledger.docs_at([rowid])[rowid].id for rowid, _ in found] == ["k1"]
        stemmed = ledger.keyword_search("c1", '"zeppelins"', DocsFilter(), 10, table="stems")  # built from the old rows
        assert [ledger.docs_at([rowid])[rowid].id for rowid, _ in stemmed] == ["k1"]
        assert ledger.filter_values("c1")["tool"] == {"Bash"} and ledger.agents("c1") == {"claude-code"}
        main_only = DocsFilter(" AND d.is_sidechain = 0")
        assert ledger.matching_ids("c1", main_only, 10) == ["k1"]
        ledger.set_title("s1", "Hangar door")  # the titles table exists now
        assert ledger.titles(["s1"]) == {"s1": "Hangar door"}
    finally:
        ledger.close()
    again = Ledger(path)  # a second open finds it current and changes nothing
    try:
        assert again.schema_version == LATEST and again.ids("c1") == ({"k1", "k2"}, {"k1", "k2"})
    finally:
        again.close()


def test_a_new_ledger_starts_at_the_latest_version(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        assert ledger.schema_version == LATEST and ledger.active is None and ledger.collection_names() == set()
    finally:
        ledger.close()


def test_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(sqlite3.DatabaseError, match=f"schema version {LATEST + 1}"):
        Ledger(path)


def _chunks(prefix: str, texts: list[str]) -> list[Chunk]:
    meta: dict[str, MetadataValue] = {"session_id": f"{prefix}-s", "project": "/w/api", "kind": "exchange", "ts_epoch": 1}
    return [Chunk(f"{prefix}{i}", text, {**meta, "content_hash": f"{prefix}{i}"}) for i, text in enumerate(texts)]


def test_keyword_search_keeps_to_its_collection_while_another_is_built_beside_it(tmp_path: Path) -> None:
    """A model change builds a second collection in the same ledger. Its chunks matching a query
    better (here, saying the word more often) must not crowd the served collection's out."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        served = _chunks("old", [f"the zeppelin hangar, note {i}" for i in range(5)])
        source = SourceFile(tmp_path / "s.jsonl", "-w-api/s.jsonl", "old-s", None, None, 1, 1)
        ledger.record("old", source, "old-s", served)
        only_one = ledger.keyword_search("old", '"zeppelin"', DocsFilter(), 3)
        new = _chunks("new", ["zeppelin zeppelin zeppelin"] * 8)
        ledger.record("new", SourceFile(tmp_path / "t.jsonl", "-w-api/t.jsonl", "new-s", None, None, 1, 1), "new-s", new)
        for limit in (3, 10):
            found = ledger.keyword_search("old", '"zeppelin"', DocsFilter(), limit)
            ids = [ledger.docs_at([rowid])[rowid].id for rowid, _ in found]
            assert len(ids) == min(limit, 5) and all(id_.startswith("old") for id_ in ids)
        assert len(only_one) == 3  # the same ledger with one collection, for comparison
        newest = ledger.keyword_search("new", '"zeppelin"', DocsFilter(), 3)
        assert len(newest) == 3 and all(ledger.docs_at([rowid])[rowid].id.startswith("new") for rowid, _ in newest)
    finally:
        ledger.close()


def test_keyword_search_holding_keeps_the_chunks_that_also_match_it_scored_as_without_it(tmp_path: Path) -> None:
    """`holding` (the phrases of hyphen-joined words) narrows a keyword search to the chunks that
    also match it, each with the score and in the order the search alone gives it: under every
    plan (no filter, another collection beside it, a filter, a session)."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        texts = [f"continue after the error, then continue {i}" for i in range(6)]
        texts += [f"set continue-on-error on step {i}" + " padding" * i for i in range(4)]
        source = SourceFile(tmp_path / "s.jsonl", "-w-api/s.jsonl", "c-s", None, None, 1, 1)
        ledger.record("c", source, "c-s", _chunks("c", texts))
        every, phrase = '"continue" "error"', '"continue on error"'
        plans = {"no filter": (DocsFilter(), None), "a project": (DocsFilter(" AND d.project = ?", ("/w/api",)), None)}
        plans["a session"] = (DocsFilter(), ledger.session_span("c", "c-s"))

        def both(where: DocsFilter, span: tuple[int, int] | None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
            alone = ledger.keyword_search("c", every, where, 20, span)
            return alone, ledger.keyword_search("c", every, where, 20, span, holding=phrase)

        found = {name: both(*plan) for name, plan in plans.items()}
        other = SourceFile(tmp_path / "t.jsonl", "-w-api/t.jsonl", "d-s", None, None, 1, 1)
        ledger.record("d", other, "d-s", _chunks("d", ["continue-on-error, continue on error"] * 3))
        found["another collection beside it"] = both(DocsFilter(), None)
        for name, (alone, held) in found.items():
            joined = [pair for pair in alone if "continue-on-error" in ledger.docs_at([pair[0]])[pair[0]].text]
            assert len(alone) == 10 and held == joined and len(held) == 4, name
    finally:
        ledger.close()


def test_a_full_keyword_list_makes_room_for_the_best_chunks_holding_the_joined_word(tmp_path: Path) -> None:
    """With more chunks holding "continue" and "error" than the list takes, the best chunks holding
    `continue-on-error` take the places of the worst that do not; those holding it that the list
    already had stay, however low they rank in it."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        apart_best = ["continue error continue error continue error"] * 4  # apart, best by bm25
        joined = [f"continue-on-error continue error {i}" for i in range(6)]  # joined, next
        apart = [f"continue error alpha beta gamma delta {i}" for i in range(5)]  # apart, below them
        joined_worst = ["continue-on-error " + "padding " * 30 + str(i) for i in range(4)]  # joined, last
        source = SourceFile(tmp_path / "s.jsonl", "-w-api/s.jsonl", "c-s", None, None, 1, 1)
        ledger.record("c", source, "c-s", _chunks("c", apart_best + joined + apart + joined_worst))
        retriever = Retriever(ledger, None, "c", 19)  # type: ignore[arg-type]  # keyword ranks only
        wanted = 10  # the list takes 10: apart_best and joined, then joined_worst must come in for apart_best

        def texts(pairs: list[tuple[int, float]]) -> list[str]:
            return [ledger.docs_at([rowid])[rowid].text for rowid, _ in pairs]

        plain = ledger.keyword_search("c", '"continue" "error"', DocsFilter(), wanted)
        assert sorted(texts(plain)) == sorted(apart_best + joined)
        ranks = retriever.keyword_ranks("words", "continue-on-error", None, DocsFilter(), wanted)
        assert sorted(texts(ranks.pairs)) == sorted(joined + joined_worst) and not ranks.widened
    finally:
        ledger.close()
