"""Several Claude Code windows on one data dir: servers keep answering while one process writes."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.calls import reindex
from support.env import env_for, settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn
from support.processes import COMMAND, server_params
from support.wait import await_until

PHRASE = "quasar telemetry pipeline backpressure"


def seed(projects: Path, count: int) -> None:
    for i in range(count):
        write_session(
            projects,
            f"/home/dev/app{i % 4}",
            f"s-{i}",
            exchange(f"s-{i}", f"/home/dev/app{i % 4}", f"question {i} about module{i}", f"answer {i} touching file{i}.py"),
        )


@pytest.mark.slow
async def test_three_servers_and_a_reindex_on_one_data_dir(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    seed(projects, 20)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    seed(projects, 60)  # 40 more sessions for the reindex to write while the servers search
    write_session(
        projects,
        "/home/dev/space",
        "s-new",
        exchange("s-new", "/home/dev/space", f"why does the {PHRASE} stall", "a bounded queue fixed it"),
    )
    env = {
        **env_for(ollama.url, settings.claude_dir, settings.data_dir),
        "PATH": os.environ["PATH"],
        "SESSION_SEARCH_EMBED_BATCH_SIZE": "4",
    }
    errors: list[str] = []
    searches = [0, 0, 0]
    params = server_params(settings)
    async with Client(params) as one, Client(params) as two, Client(params) as three:
        clients = [one, two, three]
        writer_done = anyio.Event()

        async def search_loop(i: int) -> None:
            while not writer_done.is_set():
                with anyio.fail_after(30):
                    result = await clients[i].call_tool("search", {"query": "question about module", "top_k": 3})
                if result.is_error:
                    errors.append(result.content[0].text)
                searches[i] += 1
                await anyio.sleep(0.02)

        ollama.delay_s = 0.05
        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(search_loop, i)
            with anyio.fail_after(180):
                writer = await anyio.run_process([COMMAND, "reindex"], env=env, check=False)
            writer_done.set()
        ollama.delay_s = 0
        found = []
        for client in clients:
            with anyio.fail_after(30):
                result = await client.call_tool("search", {"query": PHRASE})
            found.append(result.structured_content["results"][0]["session_id"])
    assert writer.returncode == 0, writer.stderr.decode()
    assert errors == []
    assert min(searches) >= 5  # every server kept answering during the write
    assert found == ["s-new"] * 3  # and each sees the new chunks, without a restart


@pytest.mark.slow
async def test_the_server_keeps_its_index_fresh_by_itself(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    seed(projects, 3)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    params = server_params(settings)
    params.env["SESSION_SEARCH_REFRESH_MINUTES"] = "0.03"  # every 1.8 s
    async with Client(params) as client:

        async def answers() -> bool:  # false until the first background reindex, at start, has finished
            return not (await client.call_tool("search", {"query": "question module"})).is_error

        async def finds_the_new_session() -> bool:
            hits = (await client.call_tool("search", {"query": PHRASE})).structured_content["results"]
            return bool(hits) and hits[0]["session_id"] == "s-new"

        with anyio.fail_after(30):
            await await_until(answers, 60, poll_s=0.3)
        write_session(
            projects,
            "/home/dev/space",
            "s-new",
            exchange("s-new", "/home/dev/space", f"why does the {PHRASE} stall", "bounded queue"),
        )
        with anyio.fail_after(30):
            await await_until(finds_the_new_session, 60, poll_s=0.3)


@pytest.mark.slow
async def test_stale_index_is_reported_by_model_info_and_search(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    seed(projects, 3)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    write_session(projects, "/home/dev/space", "s-new", exchange("s-new", "/home/dev/space", "a new question", "a new answer"))
    async with Client(server_params(settings)) as client:
        found = (await client.call_tool("search", {"query": "question module"})).structured_content
        info = (await client.call_tool("model_info", {})).structured_content
    assert "1 transcript files changed since the last index" in found["note"]
    assert info["changed_files"] == 1
