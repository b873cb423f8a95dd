"""The OpenAI-compatible embedder (TEI, vLLM, llama.cpp, Ollama's /v1) against the stand-in's /v1/embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.calls import reindex, search
from support.env import settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn

from indexer.config import Settings
from indexer.errors import SessionSearchError
from indexer.service import SessionSearch

KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    projects = tmp_path / "claude" / "projects"
    for i, (prompt, answer) in enumerate(
        [("tune the gc pauses", "use ZGC"), ("flaky websocket test", "await the close frame"), ("rename the crate", "cargo edit")]
    ):
        write_session(projects, "/srv/app", f"s{i}", exchange(f"s{i}", "/srv/app", prompt, answer))
    return tmp_path / "claude"


def openai_settings(ollama: OllamaStandIn, home: Path, data: Path, **extra: str) -> Settings:
    env = {
        "SESSION_SEARCH_EMBED_BACKEND": "openai",
        "SESSION_SEARCH_OPENAI_BASE_URL": f"{ollama.url}/v1",
        "SESSION_SEARCH_OPENAI_API_KEY": KEY,
        "SESSION_SEARCH_MODEL": "qwen3-embedding:0.6b",
    }
    return settings_for(ollama.url, home, data, **{**env, **extra})


async def test_index_and_search_through_v1_embeddings(ollama: OllamaStandIn, home: Path, tmp_path: Path) -> None:
    settings = openai_settings(
        ollama, home, tmp_path / "data", SESSION_SEARCH_DIMENSIONS="512", SESSION_SEARCH_EMBED_BATCH_SIZE="2"
    )
    calls = ollama.embed_calls
    report = await reindex(settings)
    assert report.chunks_added == 3
    assert ollama.embed_calls - calls == 1 + 2, (
        ollama.embedded_inputs
    )  # a probe for the dimensions, then 3 inputs in batches of 2
    assert (await search(settings, "websocket test flaky", mode="vector"))[0] == "s1"
    assert ollama.embedded_inputs[-1].startswith("Instruct: ") and ollama.embedded_inputs[-1].endswith(
        "\nQuery:websocket test flaky"
    )
    index = SessionSearch(settings)
    info = await index.info()
    await index.aclose()
    assert info.dimensions == 512 and info.index_dimensions == 512
    assert KEY not in info.model_dump_json()


async def test_vectors_from_two_backends_never_mix(ollama: OllamaStandIn, home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await reindex(settings_for(ollama.url, home, data, SESSION_SEARCH_MODEL="qwen3-embedding:0.6b"))
    switched = openai_settings(ollama, home, data)
    assert (await search(switched, "gc pauses", mode="vector"))[0] == "s0"  # still the Ollama-built index, queried through Ollama
    report = await reindex(switched)
    assert report.migrated and report.chunks_added == 3  # a new index, every chunk embedded again
    index = SessionSearch(switched)
    served = index._serving()
    await index.aclose()
    assert served.identity.backend == "openai"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"SESSION_SEARCH_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
            "Cannot reach the embedding server at http://127.0.0.1:9/v1",
        ),
        ({"SESSION_SEARCH_MODEL": "no-such-model"}, "has no model 'no-such-model'"),
    ],
)
async def test_failures_name_the_server_and_never_the_key(
    ollama: OllamaStandIn, home: Path, tmp_path: Path, change: dict, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = openai_settings(ollama, home, tmp_path / "data", **change)
    with pytest.raises(SessionSearchError) as failure:
        await reindex(settings)
    assert message in str(failure.value)
    assert KEY not in str(failure.value) and KEY not in caplog.text


def test_the_openai_backend_needs_a_base_url() -> None:
    from indexer.config import load_settings
    from indexer.errors import ConfigError

    with pytest.raises(ConfigError, match="SESSION_SEARCH_OPENAI_BASE_URL must be set"):
        load_settings(environ={"SESSION_SEARCH_EMBED_BACKEND": "openai"})
