"""Server mode: the same index and search against a real `chroma run` process."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mcp import Client
from support.chroma import free_port, wait_for_chroma
from support.env import env_for, settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn

from indexer.config import load_settings
from indexer.errors import ConfigError
from mcp_server.server import build_server

SESSION_SEARCH = str(Path(sys.executable).parent / "session-search")


def child_env(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SESSION_SEARCH_") and k != "OLLAMA_HOST"}, **env}


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_chroma(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
async def test_index_and_search_through_a_chroma_server(chroma_url: str, ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(
        projects,
        "/srv/api",
        "s-hnsw",
        exchange("s-hnsw", "/srv/api", "what HNSW settings did we pick", "ef_search 100 and max_neighbors 16"),
    )
    write_session(
        projects, "/srv/api", "s-css", exchange("s-css", "/srv/api", "center the login button", "Use flexbox on the form")
    )
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_CHROMA_URL=chroma_url)
    async with Client(build_server(settings)) as client:
        report = (await client.call_tool("reindex", {})).structured_content
        found = (await client.call_tool("search", {"query": "HNSW settings ef_search"})).structured_content
        info = (await client.call_tool("model_info", {})).structured_content
    assert report["chunks_added"] == 2
    assert found["results"][0]["session_id"] == "s-hnsw"
    assert chroma_url in info["store"] and info["chunks"] == 2
    assert not (tmp_path / "data" / "chroma").exists()  # nothing embedded was created


@pytest.mark.slow
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


KEY = "ck-4f1d2a9e7b6c"  # what the proxy wants in x-chroma-token


class _HeaderCheckingProxy(ThreadingHTTPServer):
    """An auth proxy in front of `chroma run`, as a hosted Chroma has: 401 without the right key."""

    daemon_threads = True

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.forwarded = 0
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _HeaderCheckingProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("x-chroma-token") != KEY:
            status, headers, answer = (
                401,
                {"Content-Type": "application/json"},
                b'{"error":"Unauthorized","message":"invalid x-chroma-token"}',
            )
        else:
            upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=30)
            sent = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "x-chroma-token")}
            upstream.request(self.command, self.path, body=body or None, headers=sent)
            reply = upstream.getresponse()
            status, answer = reply.status, reply.read()
            headers = {k: v for k, v in reply.getheaders() if k.lower() in ("content-type",)}
            upstream.close()
            self.server.forwarded += 1
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


@pytest.fixture(scope="module")
def proxy(chroma_url: str) -> Iterator[_HeaderCheckingProxy]:
    server = _HeaderCheckingProxy(chroma_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_hosted_chroma_behind_an_auth_proxy_takes_the_key_tenant_and_database(
    proxy: _HeaderCheckingProxy, chroma_url: str, ollama: OllamaStandIn, tmp_path: Path
) -> None:
    """The right key, in a tenant and database of our own: indexed and searched through the proxy."""
    import chromadb

    admin = chromadb.AdminClient(
        chromadb.config.Settings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=urlsplit(chroma_url).port,
            anonymized_telemetry=False,
        )
    )
    admin.create_tenant("team")
    admin.create_database("sessions", tenant="team")
    projects = tmp_path / "claude" / "projects"
    write_session(
        projects,
        "/srv/api",
        "s-hnsw",
        exchange("s-hnsw", "/srv/api", "what HNSW settings did we pick", "ef_search 100 and max_neighbors 16"),
    )
    env = env_for(
        ollama.url,
        tmp_path / "claude",
        tmp_path / "data",
        SESSION_SEARCH_CHROMA_URL=proxy.url,
        SESSION_SEARCH_CHROMA_HEADERS=json.dumps({"x-chroma-token": KEY}),
        SESSION_SEARCH_CHROMA_TENANT="team",
        SESSION_SEARCH_CHROMA_DATABASE="sessions",
    )
    before = proxy.forwarded
    run = subprocess.run([SESSION_SEARCH, "reindex", "--quiet"], env=child_env(env), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    found = subprocess.run(
        [SESSION_SEARCH, "search", "HNSW settings ef_search", "--json"],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    info = subprocess.run([SESSION_SEARCH, "info", "--json"], env=child_env(env), capture_output=True, text=True, timeout=120)
    assert json.loads(found.stdout)["results"][0]["session_id"] == "s-hnsw"
    assert "tenant team, database sessions" in json.loads(info.stdout)["store"]
    assert proxy.forwarded > before
    ours = chromadb.HttpClient(host="127.0.0.1", port=urlsplit(chroma_url).port, tenant="team", database="sessions")
    assert [c.count() for c in ours.list_collections()] == [1]  # in the team's database, not the default one
    assert KEY not in run.stderr + found.stderr + info.stdout + info.stderr


@pytest.mark.slow
def test_a_wrong_key_is_refused_with_one_clear_line_that_never_shows_a_key(
    proxy: _HeaderCheckingProxy, ollama: OllamaStandIn, tmp_path: Path
) -> None:
    wrong = "ck-wrong-0000aaaa"
    env = env_for(
        ollama.url,
        tmp_path / "claude",
        tmp_path / "data",
        SESSION_SEARCH_CHROMA_URL=proxy.url,
        SESSION_SEARCH_CHROMA_HEADERS=json.dumps({"x-chroma-token": wrong}),
    )
    (tmp_path / "claude" / "projects").mkdir(parents=True)
    write_session(tmp_path / "claude" / "projects", "/srv/api", "s-1", exchange("s-1", "/srv/api", "a question", "an answer"))
    run = subprocess.run([SESSION_SEARCH, "-v", "reindex"], env=child_env(env), capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.startswith("session-search:")]
    assert run.returncode == 1
    assert len(lines) == 1, run.stderr
    assert f"the Chroma server at {proxy.url} refused the credentials (x-chroma-token sent)" in lines[0]
    assert "SESSION_SEARCH_CHROMA_HEADERS" in lines[0]
    assert wrong not in run.stderr + run.stdout and KEY not in run.stderr


def test_chroma_server_settings_are_checked_and_their_secrets_never_shown(tmp_path: Path) -> None:
    def error(**env: str) -> str:
        with pytest.raises(ConfigError) as raised:
            load_settings(environ={"SESSION_SEARCH_DATA_DIR": str(tmp_path), **env})
        return str(raised.value)

    url = {"SESSION_SEARCH_CHROMA_URL": "https://chroma.example.com"}
    assert "need SESSION_SEARCH_CHROMA_URL" in error(SESSION_SEARCH_CHROMA_TENANT="team")
    assert "not valid JSON" in error(SESSION_SEARCH_CHROMA_HEADERS="{x-chroma-token: s3cret-value", **url)
    assert "not a valid header name" in error(SESSION_SEARCH_CHROMA_HEADERS='{"bad name": "s3cret-value"}', **url)
    assert "s3cret" not in error(SESSION_SEARCH_CHROMA_HEADERS='{"x-key": "s3cret\\r\\nX-Evil: 1"}', **url)
    assert "s3cret" not in error(SESSION_SEARCH_CHROMA_HEADERS='{"x-key": ["s3cret"]}', **url)
    settings = load_settings(environ={**url, "SESSION_SEARCH_CHROMA_HEADERS": '{"x-chroma-token": "s3cret-value"}'})
    assert "s3cret" not in repr(settings) + repr(settings.chroma_server) + str(settings.model_dump())
    assert settings.chroma_server.headers == {"x-chroma-token": "s3cret-value"}
