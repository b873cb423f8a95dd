"""The README's two routes, tried with the real Claude Code CLI (npm @anthropic-ai/claude-code,
installed by .ci/run): its own plugin validator, and its MCP health check against our server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT
from support.processes import COMMAND

CLAUDE = ROOT / "tests" / "claude" / "node_modules" / ".bin" / "claude"

pytestmark = pytest.mark.skipif(not CLAUDE.exists(), reason="run `npm ci --prefix tests/claude` first (.ci/run does)")


def claude(home: Path, *args: str) -> str:
    env = {
        "HOME": str(home),
        "PATH": f"{Path(COMMAND).parent}:{os.environ['PATH']}",
        "SESSION_SEARCH_DATA_DIR": str(home / "data"),
        "SESSION_SEARCH_REFRESH_MINUTES": "0",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    proc = subprocess.run([str(CLAUDE), *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("target", [ROOT, ROOT / "plugin"], ids=["marketplace", "plugin"])
def test_claude_code_validates_the_plugin_files(tmp_path: Path, target: Path) -> None:
    assert "Validation passed" in claude(tmp_path, "plugin", "validate", str(target))


@pytest.mark.slow
def test_the_claude_mcp_add_route_connects(tmp_path: Path) -> None:
    claude(tmp_path, "mcp", "add", "-s", "user", "session-search", "--", COMMAND, "serve")
    assert "session-search serve - ✔ Connected" in claude(tmp_path, "mcp", "list")


@pytest.mark.slow
def test_the_plugin_route_installs_and_connects(tmp_path: Path) -> None:
    claude(tmp_path, "plugin", "marketplace", "add", str(ROOT))
    assert "Successfully installed plugin: session-search@session-search" in claude(
        tmp_path, "plugin", "install", "session-search@session-search"
    )
    assert "plugin:session-search:session-search: session-search serve - ✔ Connected" in claude(tmp_path, "mcp", "list")
