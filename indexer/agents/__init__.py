"""The coding agents whose sessions are indexed: one module each, one source interface.

An agent module gives its NAME, `discover(folder)` (its session files, as SourceFiles),
`describe(path, folder)` (one file, or None when it is not a session), `parse(source,
tool_output_chars, clean)` (a Transcript) and `resume_command(session_id)`. Adding an
agent is one module, its entry in AGENTS and its folder setting in indexer/config.py
(`Settings.agent_folders`); the pipeline, the ledger and search treat every agent alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.agents import claude_code, codex, gemini_cli
from indexer.parse import Cleaner, Transcript
from indexer.sources import CLAUDE_CODE, SourceFile

if TYPE_CHECKING:
    from indexer.models import SearchHit


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    discover: Callable[[Path], Iterator[SourceFile]]
    describe: Callable[[Path, Path], SourceFile | None]
    parse: Callable[[SourceFile, int, Cleaner], Transcript]
    resume_command: Callable[[str], str]


AGENTS: dict[str, Agent] = {
    module.NAME: Agent(module.NAME, module.discover, module.describe, module.parse, module.resume_command)
    for module in (claude_code, codex, gemini_cli)
}
AGENT_NAMES = tuple(AGENTS)


def agent_named(name: str) -> Agent:
    return AGENTS[name]


def agent_of_key(rel_path: str) -> tuple[str, str]:
    """(agent, path relative to its folder) of a ledger key (see indexer.sources.ledger_key)."""
    for name in AGENT_NAMES:
        if name != CLAUDE_CODE and rel_path.startswith(f"{name}:"):
            return name, rel_path[len(name) + 1 :]
    return CLAUDE_CODE, rel_path


def discover_sources(folders: Mapping[str, Path]) -> Iterator[SourceFile]:
    """Every session file of these agents (name -> folder), agent by agent."""
    for name, folder in folders.items():
        yield from AGENTS[name].discover(folder)


def resume_command(agent: str, session_id: str) -> str:
    found = AGENTS.get(agent)
    return found.resume_command(session_id) if found else ""


def labelled(hit: SearchHit, metadata: Mapping[str, Any], titles: Mapping[str, str]) -> SearchHit:
    """A result with the agent that wrote it, its session's title and that agent's resume command."""
    agent = str(metadata.get("agent") or CLAUDE_CODE)
    update = {"agent": agent, "title": titles.get(hit.session_id), "resume_command": resume_command(agent, hit.session_id)}
    return hit.model_copy(update=update)
