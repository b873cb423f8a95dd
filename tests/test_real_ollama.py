"""Against a real Ollama, when one answers. Every other test talks to the stand-in; these check that
what it imitates holds for the real server: embeddings that find the exchange, the model's facts,
and the answer for a model that is not pulled.

Skipped when nothing answers as Ollama at SESSION_SEARCH_TEST_OLLAMA (default the product's own
default address) or the model SESSION_SEARCH_TEST_MODEL (default the product's default model) is
not pulled there: `ollama pull qwen3-embedding:4b`, then `pytest tests/test_real_ollama.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from support.calls import reindex, run_search
from support.env import settings_for
from support.home import claude_home, exchange, write_session

from indexer.config import Settings
from indexer.errors import ModelNotPulled
from indexer.service import SessionSearch

OLLAMA = os.environ.get("SESSION_SEARCH_TEST_OLLAMA", str(Settings.model_fields["ollama_host"].default))
MODEL = os.environ.get("SESSION_SEARCH_TEST_MODEL", str(Settings.model_fields["model"].default))


def _pulled_models() -> set[str] | None:
    """The models the Ollama at OLLAMA holds, or None when nothing there answers as Ollama."""
    try:
        answer = httpx.get(f"{OLLAMA}/api/tags", timeout=2)
        answer.raise_for_status()
        return {str(m["name"]) for m in answer.json()["models"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _skip_reason() -> str | None:
    pulled = _pulled_models()
    if pulled is None:
        return f"no Ollama answers at {OLLAMA} (set SESSION_SEARCH_TEST_OLLAMA)"
    if MODEL not in pulled and f"{MODEL}:latest" not in pulled:
        return f"{MODEL} is not pulled at {OLLAMA} (ollama pull {MODEL}, or set SESSION_SEARCH_TEST_MODEL)"
    return None


SKIP_REASON = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def _two_sessions(root: Path) -> Path:
    home = claude_home(root)
    write_session(
        home / "projects",
        "/work/shop",
        "s-postgres",
        exchange(
            "s-postgres",
            "/work/shop",
            "npm run dev fails: Error: connect ECONNREFUSED 127.0.0.1:5432",
            "Postgres was not running, so the app could not reach its database. Started it with "
            "`docker compose up -d db`; the dev server connects now.",
        ),
    )
    write_session(
        home / "projects",
        "/work/shop",
        "s-layout",
        exchange(
            "s-layout",
            "/work/shop",
            "the product grid overflows on small phones",
            "The grid had a fixed min-width of 960px. I replaced it with `repeat(auto-fill, minmax(160px, 1fr))` "
            "so the cards wrap on narrow screens.",
        ),
    )
    return home


async def test_real_ollama_embeds_and_search_finds_the_exchange(tmp_path: Path) -> None:
    settings = settings_for(OLLAMA, _two_sessions(tmp_path / "claude"), tmp_path / "data", SESSION_SEARCH_MODEL=MODEL)
    report = await reindex(settings)
    assert report.chunks_added >= 2
    for mode, query, expected in (
        ("hybrid", "ECONNREFUSED 127.0.0.1:5432", "s-postgres"),
        ("vector", "why could the app not reach the database?", "s-postgres"),
        ("vector", "cards wrapping on narrow mobile screens", "s-layout"),
    ):
        response = await run_search(settings, query=query, mode=mode, top_k=2)
        assert response.mode == mode and response.note is None
        assert response.results[0].session_id == expected, (mode, query, response.results)
    async with SessionSearch(settings) as index:
        info = await index.info()
    assert info.model_pulled is True and info.ollama_version and info.ollama_error is None
    assert info.dimensions and info.dimensions == info.index_dimensions


async def test_real_ollama_names_the_pull_command_for_a_model_it_lacks(tmp_path: Path) -> None:
    missing = "session-search-no-such-model"
    settings = settings_for(OLLAMA, _two_sessions(tmp_path / "claude"), tmp_path / "data", SESSION_SEARCH_MODEL=missing)
    with pytest.raises(ModelNotPulled, match=f"ollama pull {missing}"):
        await reindex(settings)
