"""Shared fixtures: the Ollama stand-in, the real transcripts, and settings pointing at tmp dirs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ollama_standin import OllamaStandIn  # noqa: E402

from indexer.config import Settings, load_settings  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_HOME = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")).resolve()
FIXTURE_PROJECTS = FIXTURE_HOME / "projects"

if not FIXTURE_PROJECTS.is_dir():
    raise RuntimeError(f"The shared transcripts are missing: expected them in {FIXTURE_HOME} (set SESSION_SEARCH_FIXTURES)")


@pytest.fixture(scope="session")
def standin_server() -> Iterator[OllamaStandIn]:
    with OllamaStandIn() as server:
        yield server


@pytest.fixture
def ollama(standin_server: OllamaStandIn) -> Iterator[OllamaStandIn]:
    """The stand-in, with every fault switch cleared after the test."""
    standin_server.reset()
    yield standin_server
    standin_server.reset()


def env_for(ollama_url: str, claude_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment variables a user would set, for settings or a child process."""
    return {
        "OLLAMA_HOST": ollama_url,
        "SESSION_SEARCH_CLAUDE_DIR": str(claude_dir),
        "SESSION_SEARCH_DATA_DIR": str(data_dir),
        "SESSION_SEARCH_REFRESH_MINUTES": "0",  # tests that want the background reindex turn it on
        "SESSION_SEARCH_AGENTS": "claude-code",  # never this machine's own ~/.codex or ~/.gemini; agent tests name theirs
        "SESSION_SEARCH_SEARCHER_IDLE_S": "3",  # the shared searchers of finished tests leave soon
        **extra,
    }


def settings_for(ollama_url: str, claude_dir: Path, data_dir: Path, **extra: str) -> Settings:
    return load_settings(environ=env_for(ollama_url, claude_dir, data_dir, **extra))


@pytest.fixture(scope="session")
def fixture_index(standin_server: OllamaStandIn, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """All the shared transcripts, indexed once with the default model. Tests only read it."""
    import anyio

    settings = settings_for(standin_server.url, FIXTURE_HOME, tmp_path_factory.mktemp("fixture-index"))

    async def build() -> None:
        index = SessionSearch(settings)
        try:
            await index.reindex()
        finally:
            await index.aclose()

    anyio.run(build)
    return settings


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
