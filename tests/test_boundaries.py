"""What session-search touches: it only reads the Claude Code directory, and the server reads
no file outside that directory and the data dir, whatever the index or an argument says."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from mcp import Client
from support.calls import reindex
from support.env import env_for, settings_for
from support.home import claude_home
from support.ollama_standin import OllamaStandIn
from support.processes import COMMAND, server_params

from indexer.errors import InvalidArgument
from indexer.models import ReadSessionRequest
from indexer.service import SessionSearch

SESSION = "55604662-cf2a-4331-851a-ec234028f8ca"


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return claude_home(tmp_path / "claude", "-home-marco-projects-spotter")


@pytest.mark.slow
async def test_indexing_serving_and_hooks_never_write_in_the_claude_dir(
    ollama: OllamaStandIn, home: Path, tmp_path: Path
) -> None:
    before = snapshot(home)
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings, full=True)
    async with Client(server_params(settings)) as client:
        await client.call_tool("search", {"query": "phoenix server"})
        await client.call_tool("read_session", {"session_id": SESSION})
        await client.call_tool("reindex", {})
    env = {**env_for(ollama.url, home, tmp_path / "data"), "PATH": os.environ["PATH"]}
    transcript = next(home.rglob(f"{SESSION}.jsonl"))
    subprocess.run(
        [COMMAND, "hook", "Stop"], input=f'{{"transcript_path": "{transcript}"}}', text=True, env=env, timeout=60, check=True
    )
    assert snapshot(home) == before
    assert not (home / "session-search").exists()


async def test_read_session_refuses_a_ledger_path_that_leads_outside(ollama: OllamaStandIn, home: Path, tmp_path: Path) -> None:
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    secret = tmp_path / "outside.jsonl"
    secret.write_text('{"type": "user", "message": {"content": "private file outside the Claude dir"}}\n')
    with sqlite3.connect(settings.data_dir / "ledger.sqlite") as db:  # a tampered index
        db.execute("UPDATE sources SET rel_path = ? WHERE session_id = ?", (f"../../{secret.name}", SESSION))
    async with SessionSearch(settings) as index:
        with pytest.raises(InvalidArgument, match="outside the Claude Code projects directory"):
            await index.read_session(ReadSessionRequest(session_id=SESSION))
