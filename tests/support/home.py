"""The one factory for a Claude home, and transcript records as Claude Code writes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.paths import FIXTURE_PROJECTS, missing_transcripts


def claude_home(root: Path, *projects: str, all_projects: bool = False) -> Path:
    """A writable Claude home at `root`: empty, or holding copies of the named (or all) real project folders."""
    if (projects or all_projects) and (reason := missing_transcripts()):
        pytest.fail(reason, pytrace=False)
    if all_projects:
        shutil.copytree(FIXTURE_PROJECTS, root / "projects", dirs_exist_ok=True)
    (root / "projects").mkdir(parents=True, exist_ok=True)
    for name in projects:
        shutil.copytree(FIXTURE_PROJECTS / name, root / "projects" / name)
    return root


def write_session(projects: Path, project: str, session_id: str, records: list[dict | str]) -> Path:
    """A transcript file in the Claude Code layout; str records are written as raw lines."""
    folder = projects / project.replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{session_id}.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def exchange(session_id: str, cwd: str, prompt: str, answer: str, n: int = 0, ts: str = "2026-03-01T10:00:00Z") -> list[dict]:
    """A user prompt and an assistant answer, as Claude Code writes them."""
    base = {"sessionId": session_id, "cwd": cwd, "gitBranch": "main", "timestamp": ts, "isSidechain": False, "version": "2.1.0"}
    return [
        {**base, "type": "user", "uuid": f"{session_id}-u{n}", "message": {"role": "user", "content": prompt}},
        {
            **base,
            "type": "assistant",
            "uuid": f"{session_id}-a{n}",
            "message": {"id": f"msg-{session_id}-{n}", "role": "assistant", "content": [{"type": "text", "text": answer}]},
        },
    ]


def append(path: Path, records: list[dict]) -> None:
    """New lines at the end of a transcript, as Claude Code appends them."""
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
