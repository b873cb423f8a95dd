"""The product's settings and environment for a benchmark run."""

from __future__ import annotations

import os
from pathlib import Path

from base import NATIVE_DIMS

from indexer.config import Settings, load_settings

# -- settings --------------------------------------------------------------------------------


def env_for(ollama_url: str, claude_dir: Path, data_dir: Path, dims: int | None = None, **extra: str) -> dict[str, str]:
    """The variables a user would set; refresh off, so nothing runs in the background."""
    env = {
        "OLLAMA_HOST": ollama_url,
        "SESSION_SEARCH_CLAUDE_DIR": str(claude_dir),
        "SESSION_SEARCH_DATA_DIR": str(data_dir),
        "SESSION_SEARCH_REFRESH_MINUTES": "0",
        **extra,
    }
    if dims and dims != NATIVE_DIMS:
        env["SESSION_SEARCH_DIMENSIONS"] = str(dims)
    return env


def settings_for(ollama_url: str, claude_dir: Path, data_dir: Path, dims: int | None = None, **extra: str) -> Settings:
    return load_settings(environ=env_for(ollama_url, claude_dir, data_dir, dims, **extra))


def child_env(env: dict[str, str]) -> dict[str, str]:
    """os.environ with the product's own variables replaced by env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_SEARCH_") and k != "OLLAMA_HOST"}
    return {**base, **env}
