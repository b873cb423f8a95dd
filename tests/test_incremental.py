"""Incremental reindexing: only what changed is embedded; crashes, copies and deletions lose nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from support.calls import reindex, search, stored_ids
from support.env import env_for, settings_for
from support.home import append, claude_home, exchange, write_session
from support.ledger_reads import building_files, served_name
from support.ollama_standin import OllamaStandIn
from support.processes import COMMAND, cli
from support.wait import wait_until

from indexer.config import Settings
from indexer.ledger import Ledger
from indexer.models import ReindexOptions, SearchRequest
from indexer.service import SessionSearch

SPOTTER = "projects/-home-marco-projects-spotter/55604662-cf2a-4331-851a-ec234028f8ca.jsonl"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A writable copy of the real transcripts."""
    return claude_home(tmp_path / "claude", all_projects=True)


async def test_an_appended_exchange_is_the_only_thing_embedded(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    before = len(ollama.embedded_inputs)
    session = home / SPOTTER
    append(
        session,
        exchange(
            "55604662-cf2a-4331-851a-ec234028f8ca",
            "/home/marco/projects/spotter",
            "why does the flux capacitor overheat",
            "The cooling loop was disabled in config.exs",
            n=99,
        ),
    )
    report = await reindex(settings)
    sent = ollama.embedded_inputs[before:]
    assert report.files_indexed == 1
    assert len(sent) == 1 and "flux capacitor" in sent[0]
    assert (await search(settings, "flux capacitor overheat"))[0] == "55604662-cf2a-4331-851a-ec234028f8ca"


async def test_a_no_change_reindex_sends_nothing_to_the_embedder(fixture_index: Settings, ollama: OllamaStandIn) -> None:
    calls = ollama.embed_calls
    report = await reindex(fixture_index)
    assert report.files_indexed == 0 and report.chunks_added == 0
    assert ollama.embed_calls == calls


async def test_a_truncated_file_loses_its_stale_chunks(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    records = exchange("s1", "/p", "first question about kafka", "answer one", n=1) + exchange(
        "s1", "/p", "second question about redis", "answer two", n=2
    )
    path = write_session(projects, "/p", "s1", records)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    assert len(stored_ids(settings.data_dir)) == 2
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n")
    report = await reindex(settings)
    assert report.chunks_removed == 1 and report.chunks_added == 0
    assert len(stored_ids(settings.data_dir)) == 1
    assert await search(settings, "redis") == ["s1"]  # only the kafka exchange is left in s1


async def test_a_half_written_last_line_is_picked_up_next_time(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    path = write_session(projects, "/p", "s1", exchange("s1", "/p", "how do I rotate the logs", "use logrotate"))
    line = json.dumps(exchange("s1", "/p", "what about the nginx access log", "same, with copytruncate", n=2)[0])
    with path.open("a") as fh:
        fh.write(line[:40])  # Claude Code is still writing this line
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    first = await reindex(settings)
    assert first.malformed_lines == 1 and len(stored_ids(settings.data_dir)) == 1
    with path.open("a") as fh:
        fh.write(line[40:] + "\n")
    second = await reindex(settings)
    assert second.malformed_lines == 0 and second.chunks_added == 1
    assert len(stored_ids(settings.data_dir)) == 2


async def test_a_resumed_session_copying_its_parent_is_not_doubled(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    parent = exchange("parent", "/p", "set up the postgres replica", "streaming replication is on", n=1)
    write_session(projects, "/p", "parent", parent)
    copied = [{**r, "sessionId": "child"} for r in parent]  # same uuids, new session id
    write_session(projects, "/p", "child", copied + exchange("child", "/p", "now promote the replica", "pg_ctl promote", n=2))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    report = await reindex(settings)
    assert len(stored_ids(settings.data_dir)) == 2
    assert report.files_indexed == 2
    assert len(await search(settings, "postgres replica streaming replication")) == 2


async def test_deleted_transcripts_stay_searchable_until_pruned(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    gone = write_session(projects, "/p", "old", exchange("old", "/p", "the zeppelin migration plan", "phase one is done"))
    write_session(projects, "/p", "new", exchange("new", "/p", "css grid question", "use grid-template-areas"))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    gone.unlink()
    kept = await reindex(settings)
    assert kept.chunks_removed == 0
    assert (await search(settings, "zeppelin migration plan"))[0] == "old"
    pruned = await reindex(settings, prune=True)
    assert pruned.files_pruned == 1
    assert "old" not in await search(settings, "zeppelin migration plan")


@pytest.mark.slow
def test_dry_run_counts_without_ollama_or_writes(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    ollama.down()
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([COMMAND, "reindex", "--dry-run", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dry_run"] and report["files_indexed"] == 36 and report["chunks_added"] > 500
    assert report["estimated_tokens"] > 100_000
    assert not (tmp_path / "data" / "chroma").exists()


async def wait_for_building(data_dir: Path, files: int, timeout_s: float = 60) -> None:
    """Until the ledger shows a new index being built with at least `files` files in it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if building_files(data_dir) >= files:
            return
        await anyio.sleep(0.05)
    raise AssertionError("the migration never got going")


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_calls", [0, 10, 30])
def test_sigkill_at_any_point_then_resume_equals_a_clean_build(
    kill_after_calls: int, home: Path, ollama: OllamaStandIn, tmp_path: Path, fixture_index: Settings
) -> None:
    ollama.delay_s = 0.08  # a slow embedder, so the kill lands mid-run
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin", "SESSION_SEARCH_EMBED_BATCH_SIZE": "8"}
    calls = ollama.embed_calls
    proc = cli(env)
    # Before the first batch, or once the embedder has answered that many: a point in the run, not a guess at timing.
    wait_until(lambda: ollama.embed_calls - calls >= kill_after_calls or proc.poll() is not None, 120)
    writers = children_of(proc.pid)  # the Chroma writer, once it has started
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert all(gone_within(pid, 15) for pid in writers), "a child writer outlived the killed reindex"
    ollama.delay_s = 0
    resumed = cli(env, "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert stored_ids(tmp_path / "data") == stored_ids(fixture_index.data_dir)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone_within(pid: int, seconds: float) -> bool:

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state == "Z"  # exited; only its parent (init, after the kill) has not reaped it yet

    return wait_until(gone, seconds, poll_s=0.1)


@pytest.mark.slow
async def test_a_dead_chroma_writer_fails_the_run_clearly_and_loses_nothing(
    home: Path, ollama: OllamaStandIn, tmp_path: Path, fixture_index: Settings
) -> None:
    ollama.delay_s = 0.08
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin", "SESSION_SEARCH_EMBED_BATCH_SIZE": "8"}
    proc = cli(env)
    wait_until(lambda: children_of(proc.pid), 30)
    writers = children_of(proc.pid)
    assert writers, "a big first run writes Chroma from a child process"
    await wait_for_building(tmp_path / "data", files=2)  # mid-run, observably: not a guess at timing
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "writer process died" in err and "Traceback" not in err
    ollama.delay_s = 0
    assert cli(env).wait(timeout=300) == 0
    assert stored_ids(tmp_path / "data") == stored_ids(fixture_index.data_dir)


@pytest.mark.slow
async def test_ctrl_c_stops_cleanly_and_the_next_run_finishes(
    home: Path, ollama: OllamaStandIn, tmp_path: Path, fixture_index: Settings
) -> None:
    """Ctrl-C on a terminal reaches the whole process group, the chroma-writer child included."""
    ollama.delay_s = 0.08
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin", "SESSION_SEARCH_EMBED_BATCH_SIZE": "8"}
    proc = cli(env, start_new_session=True)
    await wait_for_building(tmp_path / "data", files=2)  # mid-run, the child writer started: observable, not timed
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    ollama.delay_s = 0
    assert cli(env).wait(timeout=300) == 0
    assert stored_ids(tmp_path / "data") == stored_ids(fixture_index.data_dir)


@pytest.mark.slow
def test_a_second_reindex_is_refused_with_the_holders_pid(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    ollama.delay_s = 0.1
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    calls = ollama.embed_calls
    first = cli(env)
    wait_until(lambda: ollama.embed_calls > calls, 60)  # embedding, so it holds the writer lock
    second = subprocess.run([COMMAND, "reindex"], capture_output=True, text=True, env=env, timeout=60)
    first.kill()
    first.wait()
    assert second.returncode == 75
    assert f"already running (pid {first.pid})" in second.stderr


@pytest.mark.slow
async def test_interrupted_migration_leaves_the_old_index_serving(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await reindex(settings_for(ollama.url, home, data))
    old_ids = stored_ids(data)
    ollama.delay_s = 0.08
    env = {
        **env_for(ollama.url, home, data),
        "PATH": "/usr/bin:/bin",
        "SESSION_SEARCH_DIMENSIONS": "1024",
        "SESSION_SEARCH_EMBED_BATCH_SIZE": "8",
    }
    proc = cli(env)
    await wait_for_building(data, files=5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ollama.delay_s = 0
    smaller = settings_for(ollama.url, home, data, SESSION_SEARCH_DIMENSIONS="1024")
    assert stored_ids(data) == old_ids  # the old collection is still the one served
    assert (await search(smaller, "mix phx.server doesnt seem to start"))[0].startswith("55604662")
    index = SessionSearch(smaller)
    info = await index.info()
    await index.aclose()
    assert info.index_dimensions == 2560 and info.migration and "1024 dimensions" in info.migration
    resumed = await reindex(smaller)
    assert resumed.migrated and resumed.files_indexed < 36  # what the killed run stored was kept
    assert stored_ids(data) == old_ids  # same chunker, so the same ids
    index = SessionSearch(smaller)
    info = await index.info()
    await index.aclose()
    assert info.index_dimensions == 1024 and info.migration is None


async def test_a_migration_keeps_the_chunks_of_deleted_transcripts(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    gone = write_session(projects, "/p", "old", exchange("old", "/p", "the zeppelin migration plan", "phase one is done"))
    write_session(projects, "/p", "new", exchange("new", "/p", "css grid question", "use grid-template-areas"))
    await reindex(settings_for(ollama.url, tmp_path / "claude", tmp_path / "data"))
    gone.unlink()
    smaller = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_DIMENSIONS="1024")
    report = await reindex(smaller)
    assert report.migrated and report.chunks_added == 2
    assert (await search(smaller, "zeppelin migration plan", mode="vector"))[0] == "old"


async def test_a_new_document_template_migrates_and_a_new_query_template_does_not(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/p", "s1", exchange("s1", "/p", "tune the vacuum settings", "autovacuum_naptime 10s"))
    data = tmp_path / "data"
    await reindex(settings_for(ollama.url, tmp_path / "claude", data))
    query_only = tmp_path / "query.toml"
    query_only.write_text('family = "mine"\nquery = "find: {query}"\ndocument = "{text}"\n')
    same_docs = settings_for(ollama.url, tmp_path / "claude", data, SESSION_SEARCH_PROMPT_FILE=str(query_only))
    assert (await reindex(same_docs)).migrated is False
    assert await search(same_docs, "vacuum settings") == ["s1"]
    assert ollama.embedded_inputs[-1] == "find: vacuum settings"  # the new query template is used at once
    new_docs = tmp_path / "docs.toml"
    new_docs.write_text('family = "mine"\nquery = "find: {query}"\ndocument = "passage: {text}"\n')
    changed = settings_for(ollama.url, tmp_path / "claude", data, SESSION_SEARCH_PROMPT_FILE=str(new_docs))
    report = await reindex(changed)
    assert report.migrated and report.chunks_added == 1
    assert ollama.embedded_inputs[-1].startswith("passage: User: tune the vacuum settings")


def to_format_2(ledger: Path) -> None:
    """Rewrite a ledger as the previous release kept it: keyword rows in one FTS5 table."""
    with sqlite3.connect(ledger) as db:
        db.executescript("""
            CREATE VIRTUAL TABLE keyword USING fts5(
                text, collection UNINDEXED, id UNINDEXED, session_id UNINDEXED, project UNINDEXED, git_branch UNINDEXED,
                ts_epoch UNINDEXED, kind UNINDEXED, agent_id UNINDEXED, tools UNINDEXED, meta UNINDEXED,
                tokenize = "unicode61 tokenchars '_'");
            INSERT INTO keyword SELECT text, collection, id, session_id, project, git_branch, ts_epoch, kind, agent_id, tools, meta FROM docs;
            DROP TABLE docs; DROP TABLE words;
            PRAGMA user_version = 0;
        """)


async def test_an_index_from_the_previous_release_is_upgraded_in_place(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    queries = [
        ("flux capacitor", {}),
        ("mix test", {}),
        ("phoenix liveview", {"project": "spotter"}),
        ("error", {"mode": "keyword"}),
    ]
    before = [await search(settings, q, **f) for q, f in queries]
    assert any(before)
    to_format_2(settings.data_dir / "ledger.sqlite")

    assert [await search(settings, q, **f) for q, f in queries] == before
    sent = len(ollama.embedded_inputs)
    report = await reindex(settings)
    assert report.files_indexed == 0 and len(ollama.embedded_inputs) == sent  # nothing embedded again
    with sqlite3.connect(settings.data_dir / "ledger.sqlite") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "keyword" not in tables and "docs" in tables


async def test_a_server_sees_what_its_own_big_reindex_wrote(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    """A big run writes Chroma from a child process: the searching process must not keep a stale view."""
    settings = settings_for(ollama.url, home, tmp_path / "data")
    async with SessionSearch(settings) as index:
        await index.reindex(ReindexOptions())
        assert (await index.search(SearchRequest(query="mix phx.server", mode="vector"))).results  # Chroma loaded here
        for n in range(25):  # enough new files for a child writer
            session = f"00000000-0000-4000-8000-{n:012d}"
            prompt = "why does the zeppelin hangar door jam" if n == 7 else f"routine question number {n}"
            write_session(
                home / "projects", "/home/dev/hangar", session, exchange(session, "/home/dev/hangar", prompt, "checked it", n=n)
            )
        report = await index.reindex(ReindexOptions())
        assert report.files_indexed == 25
        found = await index.search(SearchRequest(query="why does the zeppelin hangar door jam", mode="vector"))
    assert found.results[0].session_id == "00000000-0000-4000-8000-000000000007"


async def test_a_client_that_missed_another_process_s_writes_is_opened_again(
    home: Path, ollama: OllamaStandIn, tmp_path: Path
) -> None:
    """chroma#3792: a client that loaded the vectors earlier never sees another process's writes.
    Told of a new generation as if it had written it itself (no reopen), search must still find them."""
    settings = settings_for(ollama.url, home, tmp_path / "data")
    session = "00000000-0000-4000-8000-000000000042"
    async with SessionSearch(settings) as index:
        await index.reindex(ReindexOptions())
        assert (await index.search(SearchRequest(query="mix phx.server", mode="vector"))).results  # Chroma loaded here
        write_session(
            home / "projects",
            "/home/dev/hangar",
            session,
            exchange(session, "/home/dev/hangar", "why does the zeppelin hangar door jam", "checked it"),
        )
        env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": "/usr/bin:/bin"}
        proc = cli(env)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        index.catalog.publish()  # this client now believes it is current
        found = await index.search(SearchRequest(query="why does the zeppelin hangar door jam", mode="vector"))
    assert found.results[0].session_id == session


def to_format_3(ledger: Path) -> None:
    """Rewrite a ledger as release 3 kept it: docs without the agent column, no titles."""
    with sqlite3.connect(ledger) as db:
        db.executescript(
            "DROP INDEX docs_by_agent; ALTER TABLE docs DROP COLUMN agent; DROP TABLE titles; PRAGMA user_version = 0;"
        )


async def test_an_index_from_before_agents_is_upgraded_in_place(home: Path, ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    # top_k 5: a format-3 ledger has no titles, so more results would fit the size budget.
    queries = [
        ("flux capacitor", {"top_k": 5}),
        ("phoenix liveview", {"project": "spotter", "top_k": 5}),
        ("error", {"mode": "keyword", "top_k": 5}),
    ]
    before = [await search(settings, q, **f) for q, f in queries]
    assert any(before)
    to_format_3(settings.data_dir / "ledger.sqlite")

    assert [await search(settings, q, **f) for q, f in queries] == before
    sent = len(ollama.embedded_inputs)
    assert (await reindex(settings)).files_indexed == 0 and len(ollama.embedded_inputs) == sent
    ledger = Ledger(settings.data_dir / "ledger.sqlite")
    agents = ledger.agents(served_name(settings.data_dir))
    ledger.close()
    assert agents == {"claude-code"}


async def test_a_sessions_title_is_kept_in_the_ledger(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    records = exchange("s-titled", "/work/api", "tune the vacuum settings", "set autovacuum_naptime to 30s")
    write_session(
        projects,
        "-work-api",
        "s-titled",
        [*records, {"type": "summary", "summary": "Vacuum tuning for the api", "leafUuid": "x"}],
    )
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    async with SessionSearch(settings) as index:
        assert index.ledger.titles(["s-titled", "unknown"]) == {"s-titled": "Vacuum tuning for the api"}
