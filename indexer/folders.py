"""Where transcripts are read from, per agent, and whether that folder is usable.

`transcript_folders` is the one list `doctor`, `info` and `model_info` show: today Claude Code's
projects folder; another agent's source adds its own row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from indexer.config import Settings
from indexer.errors import NoTranscripts
from indexer.sources import discover

FIX = "Set SESSION_SEARCH_CLAUDE_DIR (or CLAUDE_CONFIG_DIR) to Claude Code's home, the folder that holds projects/ (~/.claude by default)."


@dataclass(frozen=True, slots=True)
class TranscriptFolder:
    """One folder of one agent's transcripts, and how many it holds now."""

    agent: str
    folder: Path
    transcripts: int
    problem: str | None = None


def claude_dir_problem(settings: Settings) -> str | None:
    """Why transcripts cannot be read from the Claude dir, in one line; None when they can."""
    home, projects = settings.claude_dir, settings.projects_dir
    if projects.is_dir():
        return None
    if not home.exists():
        return f"The Claude Code folder {home} does not exist, so there is nothing to index. {FIX}"
    if not home.is_dir():
        return f"The Claude Code folder {home} is a file, not a folder. {FIX}"
    if home.name == "projects" or any(home.glob("*/*.jsonl")):
        return f"{home} looks like the projects folder itself, one level too deep: set SESSION_SEARCH_CLAUDE_DIR to {home.parent}."
    return (
        f"{home} has no projects/ folder: Claude Code has saved no session there yet, or this is not its home. {FIX}"
    )


def check_claude_dir(settings: Settings) -> None:
    """Raise NoTranscripts when the Claude dir cannot hold transcripts."""
    problem = claude_dir_problem(settings)
    if problem:
        raise NoTranscripts(problem)


def transcript_folders(settings: Settings) -> list[TranscriptFolder]:
    """Every folder read, per agent, with its transcript count (0 and the reason when unusable)."""
    problem = claude_dir_problem(settings)
    count = 0 if problem else sum(1 for _ in discover(settings.projects_dir))
    return [TranscriptFolder("Claude Code", settings.projects_dir, count, problem)]
