"""Where transcripts are read from, per agent, and whether that folder is usable.

`transcript_folders` is the one list `doctor`, `info` and `model_info` show: one row per agent
that is read (see `Settings.agent_folders`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from indexer.config import Settings
from indexer.errors import NoTranscripts

log = logging.getLogger(__name__)
AGENT_SETTING = {"codex": "SESSION_SEARCH_CODEX_DIR", "gemini-cli": "SESSION_SEARCH_GEMINI_DIR"}
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
        return (
            f"{home} looks like the projects folder itself, one level too deep: set SESSION_SEARCH_CLAUDE_DIR to {home.parent}."
        )
    return f"{home} has no projects/ folder: Claude Code has saved no session there yet, or this is not its home. {FIX}"


def _problem(settings: Settings, agent: str, folder: Path) -> str | None:
    if agent == "claude-code":
        return claude_dir_problem(settings)
    home = settings.codex_dir if agent == "codex" else settings.gemini_dir
    if home.is_dir() or settings.agents is None:  # a default agent's home exists; its sessions may come later
        return None
    return f"The {agent} folder {home} does not exist. Set {AGENT_SETTING.get(agent, 'its folder setting')}, or leave {agent} out of SESSION_SEARCH_AGENTS."


def check_claude_dir(settings: Settings) -> None:
    """Raise NoTranscripts when Claude Code's folder is read and unusable, or no agent's folder exists.

    With no agent's home found at all, Claude Code's problem is the one named: it is the default agent.
    """
    folders = settings.agent_folders
    if ("claude-code" in folders or not folders) and (problem := claude_dir_problem(settings)):
        raise NoTranscripts(problem)
    for agent, folder in folders.items():  # another named agent not installed yet: said, not fatal
        if agent != "claude-code" and (problem := _problem(settings, agent, folder)):
            log.warning("%s", problem)


def transcript_folders(settings: Settings) -> list[TranscriptFolder]:
    """Every folder read, per agent, with its transcript count (0 and the reason when unusable)."""
    from indexer.agents import AGENTS  # the parsers, only when counting

    folders = settings.agent_folders or {"claude-code": settings.projects_dir}
    rows = []
    for agent, folder in folders.items():
        problem = _problem(settings, agent, folder)
        count = 0 if problem or not folder.is_dir() else sum(1 for _ in AGENTS[agent].discover(folder))
        rows.append(TranscriptFolder(agent, folder, count, problem))
    return rows
