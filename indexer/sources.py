"""Session files, as every agent's discovery describes them. Read-only.

Each agent's module in `indexer/agents/` walks its own folder and yields SourceFiles;
`indexer.agents.discover_sources` chains the agents a user has. A file's `rel_path` is
its key in the ledger: relative to the agent's folder, and prefixed with the agent's
name for every agent but Claude Code (whose keys predate the others and stay as they were).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLAUDE_CODE = "claude-code"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One session file and what its location says about it."""

    path: Path
    rel_path: str  # the ledger's key: stable across moves of the agent's home
    session_hint: str  # the session id the layout implies; records' own id wins
    agent_id: str | None  # a subagent's id, for a subagent's transcript
    agent_type: str | None
    size: int
    mtime_ns: int
    agent: str = CLAUDE_CODE  # which coding agent wrote it


def ledger_key(agent: str, relative: str) -> str:
    return relative if agent == CLAUDE_CODE else f"{agent}:{relative}"


def stat_source(
    path: Path, relative: str, session_hint: str, agent: str, agent_id: str | None = None, agent_type: str | None = None
) -> SourceFile | None:
    """A SourceFile for a file that still exists (None for one gone since it was listed)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return SourceFile(
        path, ledger_key(agent, relative), session_hint, agent_id, agent_type, stat.st_size, stat.st_mtime_ns, agent
    )


def discover(projects_dir: Path) -> Iterator[SourceFile]:
    """Claude Code's transcripts under projects_dir (indexer.agents.claude_code.discover)."""
    from indexer.agents import claude_code  # the agents' modules build on this one

    return claude_code.discover(projects_dir)
