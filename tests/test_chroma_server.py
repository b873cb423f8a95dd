"""Server mode: the same index and search against a real `chroma run` process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import exchange, settings_for, write_session
from mcp import Client
from ollama_standin import OllamaStandIn

from mcp_server.server import build_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_chroma(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"chroma run did not start within {timeout_s:g} s")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_chroma(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_index_and_search_through_a_chroma_server(chroma_url: str, ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/srv/api", "s-hnsw", exchange("s-hnsw", "/srv/api", "what HNSW settings did we pick", "ef_search 100 and max_neighbors 16"))
    write_session(projects, "/srv/api", "s-css", exchange("s-css", "/srv/api", "center the login button", "Use flexbox on the form"))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_CHROMA_URL=chroma_url)
    async with Client(build_server(settings)) as client:
        report = (await client.call_tool("reindex", {})).structured_content
        found = (await client.call_tool("search", {"query": "HNSW settings ef_search"})).structured_content
        info = (await client.call_tool("model_info", {})).structured_content
    assert report["chunks_added"] == 2
    assert found["results"][0]["session_id"] == "s-hnsw"
    assert chroma_url in info["store"] and info["chunks"] == 2
    assert not (tmp_path / "data" / "chroma").exists()  # nothing embedded was created


async def test_an_unreachable_chroma_server_is_a_clear_error(ollama: OllamaStandIn, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "claude" / "projects").mkdir(parents=True)  # a Claude home with no session yet
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_CHROMA_URL=url)
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("reindex", {})
        info = await client.call_tool("model_info", {})
    assert failed.is_error
    assert f"Cannot reach the Chroma server at {url}" in failed.content[0].text
    assert "chroma run" in failed.content[0].text
    assert not info.is_error  # model_info reports the failure instead of failing
    assert f"Cannot reach the Chroma server at {url}" in info.structured_content["index_error"]
