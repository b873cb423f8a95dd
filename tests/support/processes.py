"""The installed `session-search` command, run as a user runs it: the MCP server, the CLI, a hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mcp import StdioServerParameters

from indexer.config import Settings
from support.env import env_for

COMMAND = shutil.which("session-search", path=str(Path(sys.executable).parent)) or "session-search"


def server_params(settings: Settings, *args: str) -> StdioServerParameters:
    env = env_for(settings.ollama_host, settings.claude_dir, settings.data_dir)
    return StdioServerParameters(command=COMMAND, args=["serve", *args], env=env)


def cli(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.Popen:
    """`session-search reindex` started in the background."""
    return subprocess.Popen(
        [COMMAND, "reindex", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs
    )


def hook(settings: Settings, event: str, payload: dict, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run a hook as Claude Code does, payload on stdin; the finished process and its seconds."""
    environ = {**env_for(settings.ollama_host, settings.claude_dir, settings.data_dir), "PATH": os.environ["PATH"], **env}
    started = time.monotonic()
    proc = subprocess.run(
        [COMMAND, "hook", event], input=json.dumps(payload), capture_output=True, text=True, env=environ, timeout=60
    )
    return proc, time.monotonic() - started


def hook_log(settings: Settings) -> str:
    path = settings.data_dir / "hooks.log"
    return path.read_text() if path.exists() else ""
