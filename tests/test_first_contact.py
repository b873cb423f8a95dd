"""First contact and bad days (issue 13): every mistake and every fault gets one clear line, fast."""

from __future__ import annotations

import json
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from mcp import Client
from support.env import env_for, settings_for
from support.home import claude_home, exchange, write_session
from support.ledger_reads import served_name
from support.ollama_standin import OllamaStandIn
from support.processes import COMMAND, server_params

from indexer.config import Settings
from indexer.models import ReindexOptions, SearchRequest
from indexer.service import SessionSearch
from indexer.store import forget_open_clients
from mcp_server.server import build_server

CWD = "/home/dev/shop"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    projects = tmp_path / "claude" / "projects"
    write_session(
        projects,
        CWD,
        "s-cart",
        exchange("s-cart", CWD, "why is the cart total negative", "A discount was applied twice in cart.py"),
    )
    write_session(
        projects,
        CWD,
        "s-auth",
        exchange("s-auth", CWD, "login fails with 401 after deploy", "The JWT secret differs between the pods"),
    )
    write_session(projects, "/home/dev/blog", "s-blog", exchange("s-blog", "/home/dev/blog", "render the about page", "Done."))
    return tmp_path / "claude"


@pytest.fixture
def settings(ollama: OllamaStandIn, home: Path, tmp_path: Path) -> Settings:
    return settings_for(ollama.url, home, tmp_path / "data")


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"}, timeout=timeout)


def assert_one_line_failure(proc: subprocess.CompletedProcess, *expected: str) -> None:
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0]


async def reindex(settings: Settings, **options: object):
    async with SessionSearch(settings) as index:
        return await index.reindex(ReindexOptions(**options))


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content)


# -- 1. serve and Ctrl-C --------------------------------------------------------------------


@pytest.mark.slow
def test_serve_says_it_waits_for_a_client_and_one_sigint_ends_it_within_2_s(settings: Settings) -> None:
    env = {**env_for(settings.ollama_host, settings.claude_dir, settings.data_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [COMMAND, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        first = proc.stderr.readline()  # printed before the server waits on stdin
        assert "waiting for an MCP client" in first and "Ctrl-D" in first
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        proc.wait(timeout=5)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
        rest = proc.stderr.read()
    assert elapsed < 2.0
    assert proc.returncode == 130
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest


# -- 2. a wrong or missing Claude dir -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp, home: tmp / "no-such-dir", "does not exist"),
        (lambda tmp, home: (tmp / "a-file").write_text("x") and tmp / "a-file", "is a file, not a folder"),
        (lambda tmp, home: home / "projects", "one level too deep"),
        (lambda tmp, home: (tmp / "empty-home").mkdir() or tmp / "empty-home", "has no projects/ folder"),
    ],
    ids=["missing", "a-file", "projects-itself", "no-projects"],
)
def test_a_wrong_claude_dir_is_one_line_and_exit_1(
    ollama: OllamaStandIn, home: Path, tmp_path: Path, make, expected: str
) -> None:
    claude_dir = make(tmp_path, home)
    env = env_for(ollama.url, claude_dir, tmp_path / "data")
    proc = run_cli(env, "reindex")
    assert_one_line_failure(proc, expected, "SESSION_SEARCH_CLAUDE_DIR")
    if expected == "one level too deep":
        assert str(home) in proc.stderr  # it names the folder to use instead


@pytest.mark.slow
def test_no_claude_home_at_all_is_one_line(ollama: OllamaStandIn, tmp_path: Path) -> None:
    env = {**env_for(ollama.url, tmp_path, tmp_path / "data"), "HOME": str(tmp_path / "new-user")}
    del env["SESSION_SEARCH_CLAUDE_DIR"]
    assert_one_line_failure(run_cli(env, "reindex"), str(tmp_path / "new-user" / ".claude"), "does not exist")


@pytest.mark.slow
def test_info_names_the_folder_read_and_its_transcript_count(settings: Settings) -> None:
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    info = json.loads(run_cli(env, "info", "--json").stdout)
    assert info["folders"] == [f"claude-code: {settings.claude_dir / 'projects'} (3 transcripts)"]


# -- 3. a data dir that cannot be used ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", [["reindex"], ["search", "cart"], ["info"], ["doctor"]])
@pytest.mark.parametrize("breakage", ["data-dir-is-a-file", "ledger-is-a-folder", "chroma-is-a-file"])
def test_an_unusable_data_dir_is_one_line(settings: Settings, tmp_path: Path, command: list[str], breakage: str) -> None:
    data = tmp_path / "broken"
    if breakage == "data-dir-is-a-file":
        data.write_text("not a folder")
    else:
        data.mkdir()
        (data / "ledger.sqlite").mkdir() if breakage == "ledger-is-a-folder" else (data / "chroma").write_text("x")
    env = env_for(settings.ollama_host, settings.claude_dir, data)
    proc = run_cli(env, *command)
    if command == ["doctor"]:  # its answer is the report, with the problem named
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert breakage == "chroma-is-a-file" or str(data) in proc.stdout.split("Problems:")[1]
        return
    if breakage == "chroma-is-a-file" and command == ["info"]:
        assert proc.returncode == 0  # nothing indexed yet: no store opened
        return
    assert_one_line_failure(proc, str(data))


@pytest.mark.slow
async def test_an_unusable_data_dir_over_mcp_says_what_to_do(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "broken"
    data.write_text("not a folder")
    broken = settings_for(settings.ollama_host, settings.claude_dir, data)
    async with Client(build_server(broken)) as client:
        for tool, args in (("model_info", {}), ("search", {"query": "cart"}), ("reindex", {})):
            result = await client.call_tool(tool, args)
            assert result.is_error
            assert "SESSION_SEARCH_DATA_DIR" in text_of(result) and str(data) in text_of(result)


# -- 4. a partial first build is served -----------------------------------------------------


@pytest.mark.parametrize("option", [{"project": "blog"}, {"since": "2000-01-01"}])
async def test_a_restricted_first_reindex_is_searchable(settings: Settings, option: dict) -> None:
    report = await reindex(settings, **option)
    assert report.migrated and report.first_index
    async with SessionSearch(settings) as index:
        found = await index.search(SearchRequest(query="about page"))
    assert found.results and found.results[0].session_id == "s-blog"


# -- 6. a hung Ollama -----------------------------------------------------------------------


@pytest.mark.slow
async def test_search_with_a_hung_ollama_answers_from_keywords_within_15_s(settings: Settings, ollama: OllamaStandIn) -> None:
    async with Client(server_params(settings)) as client:
        assert not (await client.call_tool("reindex", {})).is_error
        ollama.hang()
        started = time.monotonic()
        hybrid = await client.call_tool("search", {"query": "cart total negative"})
        searched = time.monotonic() - started
        started = time.monotonic()
        info = await client.call_tool("model_info", {})
        informed = time.monotonic() - started
        ollama.reset()
    assert searched < 15
    assert not hybrid.is_error and hybrid.structured_content["mode"] == "keyword"
    assert "did not embed the query within 5 s" in hybrid.structured_content["note"]
    assert hybrid.structured_content["results"][0]["session_id"] == "s-cart"
    assert informed < 10 and not info.is_error
    assert "did not answer within" in info.structured_content["ollama_error"]
    assert info.structured_content["chunks"] == 3


# -- 7. OLLAMA_HOST pointing at something else -----------------------------------------------


@pytest.mark.slow
async def test_a_web_server_at_ollama_host_is_named_in_one_line_without_its_html(
    settings: Settings, ollama: OllamaStandIn
) -> None:
    await reindex(settings)
    ollama.not_ollama = True
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    proc = run_cli(env, "reindex", "--full")
    assert_one_line_failure(proc, "not Ollama", "404 Not Found", "OLLAMA_HOST")
    assert "<html" not in proc.stderr
    async with SessionSearch(settings) as index:
        info = await index.info()
        found = await index.search(SearchRequest(query="cart total"))
    assert info.model_pulled is None and "not Ollama" in info.ollama_error and "ollama pull" not in info.ollama_error
    assert found.mode == "keyword" and "<" not in found.note and "not Ollama" in found.note


# -- 8. bad MCP arguments --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("search", {"query": "x", "top_k": 10_000}, "top_k: Input should be less than or equal to 50 (got 10000)"),
        ("search", {"query": "x", "mode": "psychic"}, "mode:"),
        ("search", {"query": "x", "kind": "poem"}, "kind:"),
        ("search", {}, "query: is required"),
        ("search", {"query": "x", "include_subagents": "maybe"}, "include_subagents"),
        ("search", {"query": "x", "include_subagents": "yes"}, "include_subagents"),
        ("reindex", {"full": "yes"}, "full"),
        ("read_session", {"session_id": "s-cart", "limit": 0}, "limit"),
    ],
)
async def test_bad_arguments_are_one_line_without_a_url(settings: Settings, tool: str, arguments: dict, expected: str) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("reindex", {})
        failed = await client.call_tool(tool, arguments)
    assert failed.is_error
    text = text_of(failed)
    assert expected in text and "\n" not in text and "http" not in text and "errors.pydantic.dev" not in text


@pytest.mark.slow
async def test_a_kind_this_chunker_never_makes_names_the_kinds_it_has(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("reindex", {})
        failed = await client.call_tool("search", {"query": "cart", "kind": "prompt"})
    assert failed.is_error
    assert "no 'prompt' chunks" in text_of(failed) and "exchange" in text_of(failed)


# -- 9. smaller issues -----------------------------------------------------------------------


async def test_prune_reports_the_chunks_it_removed(settings: Settings, home: Path) -> None:
    await reindex(settings)
    (home / "projects" / CWD.replace("/", "-") / "s-cart.jsonl").unlink()
    kept = await reindex(settings)
    assert kept.files_gone == 1  # the hint that --prune is due
    pruned = await reindex(settings, prune=True)
    async with SessionSearch(settings) as index:
        left = len(index.stored_ids()["vectors"])
    assert pruned.files_pruned == 1 and pruned.chunks_removed == 3 - left == 1


@pytest.mark.slow
def test_first_build_is_not_called_beside_the_old_one_and_a_deleted_transcript_hints_prune(
    settings: Settings, home: Path
) -> None:
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    first = run_cli(env, "reindex")
    assert first.returncode == 0 and "beside the old one" not in first.stdout and "first index" in first.stdout
    (home / "projects" / CWD.replace("/", "-") / "s-cart.jsonl").unlink()
    again = run_cli(env, "reindex")
    assert "--prune" in again.stdout and "1 indexed transcripts no longer exist" in again.stdout


@pytest.mark.slow
def test_search_into_a_closed_pipe_ends_quietly(settings: Settings) -> None:
    env = {
        **env_for(settings.ollama_host, settings.claude_dir, settings.data_dir),
        "PATH": f"{Path(COMMAND).parent}:/usr/bin:/bin",
    }
    assert run_cli(env, "reindex").returncode == 0
    proc = subprocess.run(
        f"'{COMMAND}' search cart -k 50 | head -c 0", shell=True, capture_output=True, text=True, env=env, timeout=60
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


@pytest.mark.slow
async def test_server_info_has_a_version(settings: Settings) -> None:
    async with Client(server_params(settings)) as client:
        assert client.server_info is not None and client.server_info.version not in ("", "unknown")


@pytest.mark.slow
def test_dry_run_creates_nothing(settings: Settings) -> None:
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    proc = run_cli(env, "reindex", "--dry-run")
    assert proc.returncode == 0 and "3 of 3 files would be indexed" in proc.stdout
    assert not settings.data_dir.exists()


@pytest.mark.slow
def test_a_misspelt_variable_is_named_on_stderr(settings: Settings) -> None:
    env = {**env_for(settings.ollama_host, settings.claude_dir, settings.data_dir), "SESSION_SEARCH_MODLE": "all-minilm"}
    proc = run_cli(env, "reindex", "--dry-run")
    assert proc.returncode == 0
    assert "SESSION_SEARCH_MODLE is not a session-search setting" in proc.stderr and "SESSION_SEARCH_MODEL" in proc.stderr


# -- 10. a private data dir ------------------------------------------------------------------


def _loose(data: Path) -> list[str]:
    return [str(p) for p in [data, *data.rglob("*")] if stat.S_IMODE(p.lstat().st_mode) & 0o077 and not p.is_symlink()]


@pytest.mark.slow
def test_the_data_dir_is_private_and_a_loose_one_is_tightened(settings: Settings) -> None:
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    assert run_cli(env, "reindex").returncode == 0
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((settings.data_dir / "ledger.sqlite").stat().st_mode) == 0o600
    assert _loose(settings.data_dir) == []
    for path in [settings.data_dir, *settings.data_dir.rglob("*")]:  # as an older release left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert run_cli(env, "search", "cart").returncode == 0
    assert _loose(settings.data_dir) == []


# -- 5. switching SESSION_SEARCH_CHROMA_URL --------------------------------------------------


async def _search(settings: Settings, query: str) -> list[str]:
    async with SessionSearch(settings) as index:
        return [hit.session_id for hit in (await index.search(SearchRequest(query=query))).results]


@pytest.mark.slow
async def test_switching_the_chroma_url_and_back_rebuilds_instead_of_looping(
    settings: Settings, home: Path, tmp_path: Path, chroma_server
) -> None:
    await reindex(settings)
    chroma_server()
    served = settings_for(settings.ollama_host, home, settings.data_dir, SESSION_SEARCH_CHROMA_URL=chroma_server.url)
    with pytest.raises(Exception, match="Run `session-search reindex` to build it there"):
        await _search(served, "cart total")
    (home / "projects" / CWD.replace("/", "-") / "s-cart.jsonl").unlink()  # its chunks must survive the move
    moved = await reindex(served)
    assert moved.migrated and moved.files_indexed == 2
    assert (await _search(served, "cart total"))[0] == "s-cart"
    with pytest.raises(Exception, match="Run `session-search reindex` to build it there"):
        await _search(settings, "cart total")
    back = await reindex(settings)
    assert back.migrated and (await _search(settings, "cart total"))[0] == "s-cart"


@pytest.mark.slow
def test_an_unreachable_chroma_url_fails_reindex_in_one_line(settings: Settings) -> None:
    from support.chroma import free_port

    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    assert run_cli(env, "reindex").returncode == 0
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_cli({**env, "SESSION_SEARCH_CHROMA_URL": url}, "reindex")
    assert_one_line_failure(proc, url)


# -- doctor ----------------------------------------------------------------------------------


def _chroma_ids(data: Path) -> tuple[object, set[str]]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # chromadb caches one client per path in this process: without a fresh one, the open after
    # `doctor --repair` rebuilt the deleted store read the old files' segments (chroma#3792).
    forget_open_clients()
    active = served_name(data)
    client = chromadb.PersistentClient(str(data / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_collection(active)
    return collection, set(collection.get(include=[])["ids"])


@pytest.mark.slow
def test_doctor_reports_every_fact_and_repair_restores_a_broken_store(ollama: OllamaStandIn, tmp_path: Path) -> None:
    home = claude_home(tmp_path / "claude", "-path-to-Demo")
    env = env_for(ollama.url, home, tmp_path / "data")
    assert run_cli(env, "reindex").returncode == 0
    _, clean = _chroma_ids(tmp_path / "data")
    healthy = run_cli(env, "doctor", "--json")
    assert healthy.returncode == 0, healthy.stdout
    facts = json.loads(healthy.stdout)
    assert facts["folders"][0]["agent"] == "claude-code" and facts["folders"][0]["transcripts"] > 0
    assert facts["ollama_answers"] is True and facts["model_pulled"] is True and facts["dimensions"] == 2560
    assert facts["served_index"] and facts["migration"] is None and facts["chunks"] == len(clean)
    assert facts["agreement"]["vectors"] == facts["agreement"]["ledger"] == facts["agreement"]["keywords"] == len(clean)
    assert facts["data_dir_mode"] == "0o700" and facts["data_dir_bytes"] > 0 and facts["problems"] == []
    # Claude Code deletes a transcript: only the ledger keeps its text now.
    deleted = next((home / "projects" / "-path-to-Demo").glob("*.jsonl"))
    deleted.unlink()

    collection, _ = _chroma_ids(tmp_path / "data")
    lost = sorted(clean)[:5]
    collection.delete(ids=lost)  # behind the index's back
    del collection
    broken = run_cli(env, "doctor")
    assert broken.returncode == 1 and "5 chunks have no vector" in broken.stdout and "doctor --repair" in broken.stdout
    repaired = run_cli(env, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "embedded 5 chunks again" in repaired.stdout
    assert _chroma_ids(tmp_path / "data")[1] == clean

    shutil.rmtree(tmp_path / "data" / "chroma")  # the vector store's files are gone
    gone = run_cli(env, "doctor")
    assert gone.returncode == 1 and "is missing from" in gone.stdout
    assert run_cli(env, "doctor", "--repair").returncode == 0
    assert _chroma_ids(tmp_path / "data")[1] == clean  # the deleted transcript's chunks included
    assert run_cli(env, "doctor").returncode == 0
