"""Failures a user meets: each gives a message the model can act on, and the server stays up."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from support.env import env_for, settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn
from support.processes import server_params

from indexer.config import Settings
from indexer.lock import WriterLock
from mcp_server.server import build_server

CWD = "/home/dev/shop"
NAN_MARKER = "zzqnanzz"


@pytest.fixture
def small_home(tmp_path: Path) -> Path:
    """A Claude home with three short sessions, one of which makes the model return NaN."""
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
    write_session(
        projects, "/home/dev/blog", "s-nan", exchange("s-nan", "/home/dev/blog", f"render the {NAN_MARKER} page", "Done.")
    )
    return tmp_path / "claude"


@pytest.fixture
def settings(ollama: OllamaStandIn, small_home: Path, tmp_path: Path) -> Settings:
    return settings_for(ollama.url, small_home, tmp_path / "data")


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content)


@pytest.mark.slow
async def test_ollama_down_names_the_host_and_the_fix_and_the_server_recovers(settings: Settings, ollama: OllamaStandIn) -> None:
    async with Client(server_params(settings)) as client:
        assert not (await client.call_tool("reindex", {})).is_error
        ollama.down()
        vector = await client.call_tool("search", {"query": "cart total", "mode": "vector"})
        hybrid = await client.call_tool("search", {"query": "cart total"})
        ollama.up()
        recovered = await client.call_tool("search", {"query": "cart total"})
    assert vector.is_error
    assert f"Cannot reach Ollama at {ollama.url}" in text_of(vector)
    assert "ollama serve" in text_of(vector) and "OLLAMA_HOST" in text_of(vector)
    assert not hybrid.is_error  # falls back to keywords, and says why
    assert hybrid.structured_content["mode"] == "keyword"
    assert f"Cannot reach Ollama at {ollama.url}" in hybrid.structured_content["note"]
    assert hybrid.structured_content["results"][0]["session_id"] == "s-cart"
    assert not recovered.is_error and recovered.structured_content["mode"] == "hybrid"
    assert recovered.structured_content["results"][0]["session_id"] == "s-cart"


@pytest.mark.slow
async def test_model_not_pulled_gives_the_pull_command(settings: Settings, ollama: OllamaStandIn) -> None:
    ollama.pulled.discard("qwen3-embedding:4b")
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("reindex", {})
        info = await client.call_tool("model_info", {})
    assert failed.is_error
    assert "ollama pull qwen3-embedding:4b" in text_of(failed)
    assert not info.is_error
    assert info.structured_content["model_pulled"] is False
    assert "ollama pull qwen3-embedding:4b" in info.structured_content["ollama_error"]


@pytest.mark.slow
async def test_nan_for_one_input_skips_that_chunk_and_indexes_the_rest(settings: Settings, ollama: OllamaStandIn) -> None:
    ollama.nan_marker = NAN_MARKER
    async with Client(build_server(settings)) as client:
        report = (await client.call_tool("reindex", {})).structured_content
        found = (await client.call_tool("search", {"query": "JWT secret pods", "top_k": 10})).structured_content
    assert report["chunks_skipped"] == 1
    assert report["chunks_added"] == 2
    assert found["total_chunks"] == 2
    assert found["results"][0]["session_id"] == "s-auth"
    assert all(NAN_MARKER not in hit["snippet"] for hit in found["results"])


@pytest.mark.slow
async def test_vectors_of_the_wrong_length_are_refused_and_nothing_is_stored(settings: Settings, ollama: OllamaStandIn) -> None:
    ollama.wrong_dims = 100
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("reindex", {})
        ollama.wrong_dims = None
        info = (await client.call_tool("model_info", {})).structured_content
    assert failed.is_error
    assert "100-dimensional" in text_of(failed) and "2560" in text_of(failed) and "Nothing was stored" in text_of(failed)
    assert info["chunks"] == 0


@pytest.mark.slow
async def test_new_dimensions_build_a_new_index_while_the_old_one_serves(
    settings: Settings, ollama: OllamaStandIn, small_home: Path
) -> None:
    async with Client(build_server(settings)) as client:
        assert not (await client.call_tool("reindex", {})).is_error
    smaller = settings_for(ollama.url, small_home, settings.data_dir, SESSION_SEARCH_DIMENSIONS="1024")
    async with Client(build_server(smaller)) as client:
        before = await client.call_tool("search", {"query": "cart total negative"})
        info_before = (await client.call_tool("model_info", {})).structured_content
        rebuilt = await client.call_tool("reindex", {})
        after = await client.call_tool("search", {"query": "cart total negative"})
        info_after = (await client.call_tool("model_info", {})).structured_content
    assert not before.is_error  # served by the old 2,560-dimension index, queried at 2,560
    assert before.structured_content["results"][0]["session_id"] == "s-cart"
    assert info_before["index_dimensions"] == 2560 and "dimensions 2560 (now 1024)" in info_before["index_error"]
    assert rebuilt.structured_content["migrated"] is True and rebuilt.structured_content["chunks_added"] == 3
    assert after.structured_content["results"][0]["session_id"] == "s-cart"
    assert info_after["index_dimensions"] == 1024 and info_after["index_error"] is None and info_after["chunks"] == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "empty"),
        ({"query": "x", "top_k": 0}, "top_k"),
        ({"query": "x", "top_k": -3}, "top_k"),
        ({"query": "x", "top_k": 10_000}, "top_k"),
        ({"query": "x", "since": "last tuesday"}, "not an ISO date"),
        ({"query": "x", "project": "no-such-project"}, "No indexed project matches 'no-such-project'"),
        ({"query": "x", "session_id": "nope"}, "No indexed exchange has the session 'nope'"),
        ({"query": "x", "git_branch": "nope"}, "No indexed exchange has the branch 'nope'"),
        ({"query": "x", "tool": "Teleport"}, "No indexed exchange has the tool 'Teleport'"),
        ({"query": "x", "kind": "poem"}, "kind"),
        ({"query": "x", "mode": "psychic"}, "mode"),
        ({"query": "x", "since": "2026-03-02", "until": "2026-03-01"}, "is after until"),
        ({"query": "x", "offset": -1}, "offset"),
        ({"query": "x" * 100_000}, "query"),
        ({"query": 5}, "query"),
    ],
)
async def test_bad_arguments_get_a_clear_tool_error(settings: Settings, arguments: dict, expected: str) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("reindex", {})
        failed = await client.call_tool("search", arguments)
        after = await client.call_tool("search", {"query": "cart"})
    assert failed.is_error
    assert expected in text_of(failed)
    assert "Traceback" not in text_of(failed)
    assert not after.is_error


@pytest.mark.slow
async def test_filters_narrow_results(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("reindex", {})
        by_project = (await client.call_tool("search", {"query": "page", "project": "blog"})).structured_content
        by_session = (await client.call_tool("search", {"query": "cart", "session_id": "s-auth"})).structured_content
        too_late = (await client.call_tool("search", {"query": "cart", "since": "2026-03-02"})).structured_content
        in_range = (
            await client.call_tool("search", {"query": "cart", "since": "2026-03-01", "until": "2026-03-01"})
        ).structured_content
    assert {h["project"] for h in by_project["results"]} == {"/home/dev/blog"}
    assert {h["session_id"] for h in by_session["results"]} == {"s-auth"}
    assert too_late["results"] == [] and too_late["note"]
    assert len(in_range["results"]) == 3


@pytest.mark.slow
async def test_a_second_reindex_is_told_who_holds_the_lock(settings: Settings) -> None:
    with WriterLock(settings.data_dir):
        async with Client(build_server(settings)) as client:
            failed = await client.call_tool("reindex", {})
    assert failed.is_error and "already running (pid" in text_of(failed)


@pytest.mark.slow
async def test_search_before_any_index_says_to_reindex(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("search", {"query": "cart"})
    assert failed.is_error and "session-search reindex" in text_of(failed)


@pytest.mark.slow
def test_cli_reports_ollama_down_in_one_line(settings: Settings, ollama: OllamaStandIn) -> None:
    import subprocess

    from support.processes import COMMAND

    ollama.down()
    env = {**env_for(ollama.url, settings.claude_dir, settings.data_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([COMMAND, "reindex"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert f"Cannot reach Ollama at {ollama.url}" in proc.stderr


@pytest.mark.slow
async def test_model_info_with_ollama_down_still_describes_the_index(settings: Settings, ollama: OllamaStandIn) -> None:
    async with Client(build_server(settings)) as client:
        await client.call_tool("reindex", {})
        ollama.down()
        info = await client.call_tool("model_info", {})
    assert not info.is_error
    assert info.structured_content["chunks"] == 3 and info.structured_content["sessions"] == 3
    assert info.structured_content["model_pulled"] is None
    assert "Cannot reach Ollama" in info.structured_content["ollama_error"]
