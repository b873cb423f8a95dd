"""list_sessions: a timeline of past sessions, over MCP (Python and TypeScript clients) and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client
from support.env import env_for
from support.ollama_standin import OllamaStandIn
from support.paths import ROOT
from support.processes import COMMAND, server_params

from indexer.config import Settings

TITLED = "a7da6a22"  # its transcript carries a summary record: its title
SPOTTER = "/home/marco/projects/spotter"


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**env_for(settings.ollama_host, settings.claude_dir, settings.data_dir), "PATH": os.environ["PATH"]}
    return subprocess.run([COMMAND, "sessions", *args], capture_output=True, text=True, env=env, timeout=60)


def listed(settings: Settings, *args: str) -> dict:
    proc = cli(settings, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_cli_lists_sessions_newest_first_with_titles_from_the_transcripts(fixture_index: Settings) -> None:
    sessions = listed(fixture_index, "--limit", "100")["sessions"]
    ends = [s["ended"] for s in sessions]
    assert ends == sorted(ends, reverse=True) and len(sessions) >= 15
    titled = next(s for s in sessions if s["session_id"].startswith(TITLED))
    assert titled["title"] == "Claude Code CLI Tool Development Summary"  # the latest of its two summary records
    assert titled["subagents"] == 1 and titled["exchanges"] > 5
    assert titled["resume_command"] == f"claude --resume {titled['session_id']}"
    phx = next(s for s in sessions if s["session_id"].startswith("55604662"))
    assert phx["first_prompt"] == "mix phx.server doesnt seem to start" and phx["agent"] == "claude-code"
    assert phx["project"] == SPOTTER and phx["git_branch"] == "master" and phx["started"] == "2026-02-10T21:11:56Z"


@pytest.mark.slow
def test_cli_filters_by_project_branch_agent_and_dates(fixture_index: Settings) -> None:
    spotter = listed(fixture_index, "--project", "projects/spotter")["sessions"]
    assert spotter and all("projects/spotter" in s["project"] for s in spotter)
    master = listed(fixture_index, "--project", SPOTTER, "--branch", "master")["sessions"]
    assert {s["session_id"][:8] for s in master} == {"d6e0bada", "491e126e", "55604662"}
    window = listed(fixture_index, "--since", "2026-02-10", "--until", "2026-02-11")["sessions"]
    assert window and all(s["ended"] >= "2026-02-10" and s["started"] <= "2026-02-11T23:59:59Z" for s in window)
    assert {"d6e0bada", "55604662", "258c7280"} <= {s["session_id"][:8] for s in window}
    assert listed(fixture_index, "--since", "2026-01-01")["sessions"][-1]["ended"] >= "2026-01-01"
    assert listed(fixture_index, "--agent", "codex")["sessions"] == []
    everyone = listed(fixture_index, "--agent", "claude-code", "--limit", "100")["sessions"]
    assert len(everyone) == len(listed(fixture_index, "--limit", "100")["sessions"])


@pytest.mark.slow
def test_cli_pages_with_next_offset_without_repeats(fixture_index: Settings) -> None:
    first = listed(fixture_index, "--limit", "5")
    assert len(first["sessions"]) == 5 and first["next_offset"] == 5
    second = listed(fixture_index, "--limit", "5", "--offset", "5")
    assert not {s["session_id"] for s in first["sessions"]} & {s["session_id"] for s in second["sessions"]}
    every = listed(fixture_index, "--limit", "100")
    all_ids = [s["session_id"] for s in every["sessions"]]
    assert all_ids[5:10] == [s["session_id"] for s in second["sessions"]]
    last = listed(fixture_index, "--limit", "100", "--offset", str(len(all_ids) - 2))
    assert last["next_offset"] is None or last["sessions"]


@pytest.mark.slow
def test_cli_rejects_bad_dates_and_renders_a_readable_list(fixture_index: Settings) -> None:
    bad = cli(fixture_index, "--since", "last tuesday")
    assert bad.returncode == 2 and "since" in bad.stderr
    text = cli(fixture_index, "--project", "spotter")
    assert text.returncode == 0 and "mix phx.server doesnt seem to start" in text.stdout


@pytest.mark.slow
def test_it_answers_with_the_standin_down(fixture_index: Settings, ollama: OllamaStandIn) -> None:
    ollama.down()
    assert listed(fixture_index, "--limit", "3")["sessions"]


@pytest.mark.slow
async def test_list_sessions_over_mcp_filters_and_pages(fixture_index: Settings, ollama: OllamaStandIn) -> None:
    ollama.down()  # the ledger alone answers
    async with Client(server_params(fixture_index)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        page1 = (await client.call_tool("list_sessions", {"limit": 4})).structured_content
        page2 = (await client.call_tool("list_sessions", {"limit": 4, "offset": page1["next_offset"]})).structured_content
        spotter = (
            await client.call_tool(
                "list_sessions", {"project": "spotter", "git_branch": "master", "since": "2026-02-10", "until": "2026-02-10"}
            )
        ).structured_content
        codex = (await client.call_tool("list_sessions", {"agent": "codex"})).structured_content
        bad = await client.call_tool("list_sessions", {"until": "2020-01-01", "since": "2021-01-01"})
    assert tools["list_sessions"].annotations.read_only_hint is True and tools["list_sessions"].output_schema
    assert page1["next_offset"] == 4 and len(page2["sessions"]) == 4
    assert not {s["session_id"] for s in page1["sessions"]} & {s["session_id"] for s in page2["sessions"]}
    assert {s["session_id"][:8] for s in spotter["sessions"]} == {"d6e0bada", "491e126e", "55604662"}
    assert codex["sessions"] == [] and codex["note"]
    assert bad.is_error and "after until" in bad.content[0].text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_typescript_sdk_client_lists_sessions(fixture_index: Settings) -> None:
    script = ROOT / "tests" / "node" / "mcp_client.mjs"
    if not (ROOT / "tests" / "node" / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail("run `npm ci --prefix tests/node` first (.ci/run does)")
    env = {
        **env_for(fixture_index.ollama_host, fixture_index.claude_dir, fixture_index.data_dir),
        "PATH": f"{Path(COMMAND).parent}:/usr/local/bin:/usr/bin:/bin",
    }
    calls = [
        "--tool",
        "list_sessions",
        "--args",
        json.dumps({"limit": 3}),
        "--tool",
        "list_sessions",
        "--args",
        json.dumps({"limit": 3, "offset": 3}),
        "--tool",
        "list_sessions",
        "--args",
        json.dumps({"project": "spotter", "git_branch": "master", "agent": "claude-code", "since": "2026-02-10T22:00:00Z"}),
    ]
    proc = subprocess.run(
        ["node", str(script), *calls, "--", COMMAND, "serve"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    tool = next(t for t in out["tools"] if t["name"] == "list_sessions")
    assert tool["readOnlyHint"] is True and tool["hasOutputSchema"]
    first, second, spotter = (r["structuredContent"] for r in out["results"])
    assert first["next_offset"] == 3 and len(second["sessions"]) == 3
    assert first["sessions"][-1]["ended"] >= second["sessions"][0]["ended"]
    assert [s["session_id"][:8] for s in spotter["sessions"]] == ["d6e0bada", "491e126e"]
