"""The environment a user would set: as variables for a child process, or as the settings it makes."""

from __future__ import annotations

from pathlib import Path

from indexer.config import Settings, load_settings


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
