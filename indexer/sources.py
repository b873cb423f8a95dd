"""Find Claude Code transcripts under <claude_dir>/projects. Read-only.

Layouts (REFERENCE §1):
    <project>/<session>.jsonl                         a session
    <project>/agent-<id>.jsonl                        2.0.x subagent, beside its session
    <project>/<session>/subagents/agent-<id>.jsonl    2.1.x subagent (+ agent-<id>.meta.json)
`agent-acompact-*` files are compaction runs that repeat the session's own summary: skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One transcript file and what its location says about it."""

    path: Path
    rel_path: str  # relative to the projects dir: stable across moves of the Claude home
    session_hint: str  # the session id the layout implies; records' own sessionId wins
    agent_id: str | None
    agent_type: str | None
    size: int
    mtime_ns: int


def _agent_id(name: str) -> str | None:
    stem = name.removesuffix(".jsonl")
    return stem.removeprefix("agent-") if stem.startswith("agent-") else None


def _agent_type(path: Path) -> str | None:
    meta = path.with_name(path.name.removesuffix(".jsonl") + ".meta.json")
    try:
        value = json.loads(meta.read_text(encoding="utf-8")).get("agentType")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _describe(path: Path, projects_dir: Path) -> SourceFile | None:
    name = path.name
    if name.startswith("agent-acompact-"):
        return None
    parts = path.relative_to(projects_dir).parts
    agent_id = _agent_id(name)
    if agent_id is not None and len(parts) >= 4 and parts[-2] == "subagents":
        session_hint = parts[-3]
    else:
        session_hint = name.removesuffix(".jsonl")
    try:
        stat = path.stat()
    except OSError:
        return None
    agent_type = _agent_type(path) if agent_id is not None else None
    return SourceFile(path, "/".join(parts), session_hint, agent_id, agent_type, stat.st_size, stat.st_mtime_ns)


def discover(projects_dir: Path) -> Iterator[SourceFile]:
    """Yield every transcript under projects_dir, in a stable order."""
    if not projects_dir.is_dir():
        return
    for root, dirs, files in os.walk(projects_dir):
        dirs[:] = sorted(d for d in dirs if d != "tool-results")
        for name in sorted(files):
            if name.endswith(".jsonl"):
                source = _describe(Path(root) / name, projects_dir)
                if source is not None:
                    yield source
