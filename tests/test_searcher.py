"""The shared searcher: every `session-search serve` on one data dir searches through one process
that holds the index, started on demand, restarted when killed, gone after its idle spell."""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.calls import reindex
from support.env import settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn
from support.processes import server_params
from test_concurrency import PHRASE, seed

from indexer.config import Settings
from indexer.models import SearchRequest
from indexer.searcher_client import SearcherClient, SearcherPaths
from indexer.service import SessionSearch

HOLDER = re.compile(r"the shared searcher, pid (\d+)")


async def indexed(ollama: OllamaStandIn, tmp_path: Path, **extra: str) -> Settings:
    seed(tmp_path / "claude" / "projects", 6)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", **extra)
    await reindex(settings)
    return settings


def server_pids() -> set[int]:
    """This test's `session-search serve` children (the MCP client starts them from this process)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"serve" in argv:
            found.add(int(entry))
    return found


def loaded_chromadb(pid: int) -> bool:
    return "chromadb" in Path(f"/proc/{pid}/maps").read_text()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def holder_pid(client: Client) -> int:
    info = (await client.call_tool("model_info", {})).structured_content
    found = HOLDER.search(info["index_process"] or "")
    assert found, info["index_process"]
    return int(found.group(1))


async def top_session(client: Client, query: str) -> str:
    with anyio.fail_after(60):
        result = await client.call_tool("search", {"query": query, "top_k": 3})
    assert not result.is_error, result.content[0].text
    return result.structured_content["results"][0]["session_id"]


async def test_two_servers_share_one_searcher_and_never_load_chromadb(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    params = server_params(settings)
    async with Client(params) as one, Client(params) as two:
        assert await top_session(one, "question 3 about module3") == "s-3"
        assert await top_session(two, "question 4 about module4") == "s-4"
        pids = {await holder_pid(one), await holder_pid(two)}
        servers = server_pids()
        assert len(pids) == 1 and len(servers) == 2 and not pids & servers
        assert loaded_chromadb(pids.pop())
        assert not any(loaded_chromadb(pid) for pid in servers)  # each window is a small process
        page = await one.call_tool("read_session", {"session_id": "s-2"})
        assert not page.is_error and "question 2 about module2" in str(page.structured_content)
        assert not any(loaded_chromadb(pid) for pid in servers)


async def test_a_server_refreshing_in_the_background_never_loads_chromadb(ollama: OllamaStandIn, tmp_path: Path) -> None:
    # Without the plugin's hooks, every refresh finds the open session changed; planning that
    # reindex in the server imported chromadb and opened the store (77 to 205 MB at 100k chunks).
    settings = await indexed(ollama, tmp_path)
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/w/new", "s-new", exchange("s-new", "/w/new", "why does the zeppelin hangar door jam", "rust"))
    params = server_params(settings)
    assert params.env is not None
    params.env["SESSION_SEARCH_REFRESH_MINUTES"] = "0.02"  # at start, then every 1.2 s
    async with Client(params) as client:
        with anyio.fail_after(90):
            while await top_session(client, "zeppelin hangar door") != "s-new":
                await anyio.sleep(0.2)
        await anyio.sleep(3)  # more rounds, finding nothing to do
        servers = server_pids()
        assert len(servers) == 1
        assert not any(loaded_chromadb(pid) for pid in servers)


async def test_the_searcher_outlives_the_server_that_started_it(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    params = server_params(settings)
    async with Client(params) as two:
        async with Client(params) as one:  # starts the searcher; its process group is killed when it closes
            assert await top_session(one, "question 1 about module1") == "s-1"
            first = await holder_pid(one)
        assert await top_session(two, "question 5 about module5") == "s-5"
        assert await holder_pid(two) == first


async def test_a_searcher_killed_mid_search_is_restarted_and_the_search_answers(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    async with Client(server_params(settings)) as client:
        assert await top_session(client, "question 1 about module1") == "s-1"
        killed = await holder_pid(client)
        ollama.delay_s = 1.0  # the query's embedding is in flight when the searcher dies
        answer: list[str] = []

        async def search() -> None:
            answer.append(await top_session(client, "question 2 about module2"))

        async with anyio.create_task_group() as group:
            group.start_soon(search)
            await anyio.sleep(0.5)
            os.kill(killed, signal.SIGKILL)
        ollama.delay_s = 0
        assert answer == ["s-2"]
        assert await holder_pid(client) != killed
        assert not alive(killed)


async def test_a_stale_socket_from_a_killed_searcher_is_replaced(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    paths = SearcherPaths.of(settings)
    async with Client(server_params(settings)) as client:
        killed = await holder_pid(client)
        os.kill(killed, signal.SIGKILL)
        with anyio.fail_after(10):
            while alive(killed) or paths.holder() is not None:  # its threads close its files last
                await anyio.sleep(0.05)
        assert paths.socket.exists()  # left behind: nothing listens on it
        assert await top_session(client, "question 3 about module3") == "s-3"
        assert paths.holder() == await holder_pid(client) != killed


async def test_the_searcher_sees_a_reindex_by_another_process(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    async with Client(server_params(settings)) as client:
        assert await top_session(client, "question 3 about module3") == "s-3"
        write_session(
            tmp_path / "claude" / "projects",
            "/home/dev/space",
            "s-new",
            exchange("s-new", "/home/dev/space", f"why does the {PHRASE} stall", "a bounded queue"),
        )
        await reindex(settings)
        assert await top_session(client, PHRASE) == "s-new"


async def test_the_searcher_leaves_after_its_last_server(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path, SESSION_SEARCH_SEARCHER_IDLE_S="1")
    paths = SearcherPaths.of(settings)
    params = server_params(settings)
    params.env["SESSION_SEARCH_SEARCHER_IDLE_S"] = "1"
    async with Client(params) as client:
        searcher = await holder_pid(client)
        await anyio.sleep(2.5)  # a connected server keeps it, idle or not
        assert alive(searcher)
    with anyio.fail_after(15):
        while alive(searcher):
            await anyio.sleep(0.1)
    assert not paths.socket.exists()


async def test_the_off_switch_searches_inside_the_server(ollama: OllamaStandIn, tmp_path: Path) -> None:
    settings = await indexed(ollama, tmp_path)
    params = server_params(settings)
    params.env["SESSION_SEARCH_SHARED_SEARCHER"] = "0"
    async with Client(params) as client:
        assert await top_session(client, "question 3 about module3") == "s-3"
        info = (await client.call_tool("model_info", {})).structured_content
        (server,) = server_pids()
        assert info["index_process"] == f"this process, pid {server}"
        assert loaded_chromadb(server)
    assert not list((tmp_path / "data").glob("searcher-*"))  # no searcher was started


async def test_a_server_reindexing_through_the_shared_searcher_writes_from_a_child_process(
    ollama: OllamaStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A server whose reads go to the searcher must not load the index to write one new session:
    # at 100k chunks that took it from 77 to 692 MB (bench/memory.py --server-reindex).
    settings = await indexed(ollama, tmp_path)
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/w/new", "s-new", exchange("s-new", "/w/new", "why does the zeppelin hangar door jam", "rust"))
    caplog.set_level(logging.INFO, logger="indexer.writer_process")
    async with SessionSearch(settings) as server:
        server.searcher = SearcherClient(settings)
        report = await server.reindex()
    assert report.files_indexed == 1
    assert "Chroma writes go through a child process" in caplog.text
    async with SessionSearch(settings) as reader:
        found = await reader.search(SearchRequest(query="zeppelin hangar door", top_k=3))
    assert found.results[0].session_id == "s-new"
