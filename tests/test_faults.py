"""Faults of the services behind us: after each, the user got a message they can act on,
and the next reindex ends in exactly the index a clean run makes."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from support.env import settings_for
from support.home import claude_home
from support.ollama_standin import OllamaStandIn

from indexer.config import Settings
from indexer.errors import SessionSearchError
from indexer.models import ReindexReport
from indexer.service import SessionSearch

PROJECTS = ("-path-to-Demo", "-home-marco-projects-spotter")
MODEL = "qwen3-embedding:4b"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return claude_home(tmp_path_factory.mktemp("fault-home"), *PROJECTS)


def settings_in(ollama: OllamaStandIn, home: Path, data: Path, **extra: str) -> Settings:
    return settings_for(ollama.url, home, data, SESSION_SEARCH_EMBED_BATCH_SIZE="8", SESSION_SEARCH_EMBED_TIMEOUT="0.5", **extra)


async def run(settings: Settings) -> ReindexReport:
    async with SessionSearch(settings) as index:
        return await index.reindex()


async def ids_of(settings: Settings) -> set[str]:
    """The served index's ids, after checking Chroma, the ledger and the keyword index agree."""
    async with SessionSearch(settings) as index:
        stored = index.stored_ids()
    assert stored["vectors"] == stored["ledger"] == stored["keywords"], "a chunk is half-written"
    return stored["vectors"]


@pytest.fixture(scope="module")
def clean_ids(standin_server: OllamaStandIn, home: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    standin_server.reset()
    settings = settings_in(standin_server, home, tmp_path_factory.mktemp("clean"))
    anyio.run(run, settings)
    return anyio.run(ids_of, settings)


async def fail_during(settings: Settings, ollama: OllamaStandIn, after_calls: int, fault: Callable[[], None]) -> str:
    """Run a reindex, inject the fault once the embedder has answered `after_calls` requests; the error text."""
    start = ollama.embed_calls

    async def inject() -> None:
        while ollama.embed_calls - start < after_calls:
            await anyio.sleep(0.005)
        fault()

    failures: list[SessionSearchError] = []
    async with anyio.create_task_group() as group:
        group.start_soon(inject)
        try:
            await run(settings)
        except SessionSearchError as exc:
            failures.append(exc)
        finally:
            group.cancel_scope.cancel()
    assert failures, "the fault did not stop the reindex"
    return str(failures[0])


async def test_ollama_down_at_start(clean_ids: set[str], ollama: OllamaStandIn, home: Path, tmp_path: Path) -> None:
    settings = settings_in(ollama, home, tmp_path / "data")
    ollama.down()
    with pytest.raises(SessionSearchError, match=f"Cannot reach Ollama at {ollama.url}.*ollama serve"):
        await run(settings)
    ollama.up()
    await run(settings)
    assert await ids_of(settings) == clean_ids


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (lambda o: o.down(), "Cannot reach Ollama"),
        (lambda o: o.pulled.discard(MODEL), f"ollama pull {MODEL}"),
        (lambda o: setattr(o, "wrong_dims", 100), "100-dimensional vectors"),
        (lambda o: setattr(o, "delay_s", 2.0), "no answer within 0.5 s"),
        (lambda o: setattr(o, "fail_next", 50), "answered HTTP 500"),
    ],
    ids=["down", "model-deleted", "wrong-length", "slow", "5xx-storm"],
)
async def test_a_fault_mid_reindex_loses_nothing(
    clean_ids: set[str], ollama: OllamaStandIn, home: Path, tmp_path: Path, fault: Callable, message: str
) -> None:
    settings = settings_in(ollama, home, tmp_path / "data")
    text = await fail_during(settings, ollama, after_calls=6, fault=lambda: fault(ollama))
    assert message in text
    ollama.reset()
    async with SessionSearch(settings) as partial:
        building = partial.ledger.building
        assert building and partial.ledger.source_count(building) >= 1  # what was done before the fault was kept
    report = await run(settings)
    assert report.migrated  # the first build finished and is now served
    assert await ids_of(settings) == clean_ids


async def test_a_short_5xx_burst_is_retried(clean_ids: set[str], ollama: OllamaStandIn, home: Path, tmp_path: Path) -> None:
    settings = settings_in(ollama, home, tmp_path / "data")
    ollama.fail_next = 2
    await run(settings)
    assert await ids_of(settings) == clean_ids


async def test_nan_for_one_input_is_skipped_then_retried(
    clean_ids: set[str], ollama: OllamaStandIn, home: Path, tmp_path: Path
) -> None:
    settings = settings_in(ollama, home, tmp_path / "data")
    ollama.nan_marker = "mix phx.server doesnt seem to start"
    first = await run(settings)
    assert first.chunks_skipped == 1 and "55604662" in first.skipped[0]
    assert len(await ids_of(settings)) == len(clean_ids) - 1
    ollama.reset()
    second = await run(settings)
    assert second.chunks_added == 1  # only the skipped chunk, once the model can embed it
    assert await ids_of(settings) == clean_ids


@pytest.mark.slow
async def test_chroma_server_killed_mid_reindex_and_restarted(
    clean_ids: set[str], ollama: OllamaStandIn, home: Path, tmp_path: Path, chroma_server: Callable
) -> None:
    server = chroma_server()
    settings = settings_in(ollama, home, tmp_path / "data", SESSION_SEARCH_CHROMA_URL=chroma_server.url)
    text = await fail_during(settings, ollama, after_calls=6, fault=lambda: server.send_signal(signal.SIGKILL))
    assert f"the Chroma server at {chroma_server.url}" in text
    chroma_server()
    await run(settings)
    assert await ids_of(settings) == clean_ids
