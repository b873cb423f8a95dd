"""End to end: `session-search serve` as a subprocess, spoken to over stdio by real MCP clients."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client
from support.env import env_for
from support.paths import ROOT
from support.processes import COMMAND, server_params

from indexer.config import Settings

SESSION_WITH_PHRASE = "55604662-cf2a-4331-851a-ec234028f8ca"
PHRASE = "mix phx.server doesnt seem to start"


@pytest.mark.slow
async def test_tools_are_listed_with_schemas_and_annotations(fixture_index: Settings) -> None:
    async with Client(server_params(fixture_index)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert client.instructions and "read_session" in client.instructions
        assert len(client.instructions.encode()) < 2048
    assert set(tools) == {"search", "read_session", "reindex", "model_info", "list_sessions"}
    assert all(t.output_schema for t in tools.values())
    assert tools["search"].annotations.read_only_hint is True
    assert tools["model_info"].annotations.read_only_hint is True
    assert tools["read_session"].annotations.read_only_hint is True
    assert tools["reindex"].annotations.read_only_hint is False
    assert {"query", "top_k", "project", "session_id", "since", "until"} <= set(tools["search"].input_schema["properties"])


@pytest.mark.slow
async def test_search_over_stdio_returns_the_session_holding_a_phrase_first(fixture_index: Settings) -> None:
    async with Client(server_params(fixture_index)) as client:
        result = await client.call_tool("search", {"query": PHRASE, "top_k": 5})
    assert not result.is_error
    hits = result.structured_content["results"]
    assert hits[0]["session_id"] == SESSION_WITH_PHRASE
    assert hits[0]["project"] == "/home/marco/projects/spotter"
    assert hits[0]["git_branch"] == "master"
    assert hits[0]["resume_command"] == f"claude --resume {SESSION_WITH_PHRASE}"
    assert PHRASE in hits[0]["snippet"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert SESSION_WITH_PHRASE in result.content[0].text  # the readable rendering


@pytest.mark.slow
async def test_model_info_and_reindex_over_stdio(fixture_index: Settings) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(server_params(fixture_index)) as client:
        info = (await client.call_tool("model_info", {})).structured_content
        report = await client.call_tool("reindex", {}, progress_callback=on_progress)
    assert info["model"] == "qwen3-embedding:4b"
    assert info["dimensions"] == 2560 and info["model_pulled"] is True
    assert info["chunks"] > 500 and info["sessions"] >= 20
    assert info["query_template"].startswith("Instruct: ") and info["query_template"].endswith("\nQuery:{query}")
    assert info["last_indexed"]
    assert not report.is_error
    assert report.structured_content["files_scanned"] == 36
    assert report.structured_content["files_indexed"] == 0  # nothing changed since the build


@pytest.mark.slow
def test_nothing_but_json_rpc_reaches_stdout(fixture_index: Settings) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"query": PHRASE}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "search", "arguments": {"query": ""}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "model_info", "arguments": {}}},
    ]
    env = {**env_for(fixture_index.ollama_host, fixture_index.claude_dir, fixture_index.data_dir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [COMMAND, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT
    )
    replies = []
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" in message:  # one request at a time: stdin stays open until its answer is read
                replies.append(json.loads(proc.stdout.readline()))
    finally:
        proc.stdin.close()
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    replies += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert all(r.get("jsonrpc") == "2.0" for r in replies)
    by_id = {r["id"]: r for r in replies if "id" in r}
    assert set(by_id) == {1, 2, 3, 4, 5}
    assert by_id[4]["result"]["isError"] is True
    assert by_id[5]["result"]["isError"] is False  # the server kept answering after the error


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_typescript_sdk_client_lists_tools_and_searches(fixture_index: Settings) -> None:
    script = ROOT / "tests" / "node" / "mcp_client.mjs"
    if not (ROOT / "tests" / "node" / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail("run `npm ci --prefix tests/node` first (.ci/run does)")
    env = {
        **env_for(fixture_index.ollama_host, fixture_index.claude_dir, fixture_index.data_dir),
        "PATH": f"{Path(COMMAND).parent}:/usr/local/bin:/usr/bin:/bin",
    }
    args = ["node", str(script), "--tool", "search", "--args", json.dumps({"query": PHRASE}), "--", COMMAND, "serve"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert {t["name"] for t in out["tools"]} == {"search", "read_session", "reindex", "model_info", "list_sessions"}
    assert all(t["hasOutputSchema"] for t in out["tools"])
    (result,) = out["results"]
    assert result["isError"] is False
    assert result["structuredContent"]["results"][0]["session_id"] == SESSION_WITH_PHRASE
