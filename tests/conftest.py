"""Shared fixtures: the Ollama stand-in, the real transcripts, an index of them, a `chroma run`.

Helpers that tests call live in `tests/support/`; no test imports another test module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.chroma import free_port, start_chroma
from support.env import settings_for
from support.ollama_standin import OllamaStandIn
from support.paths import FIXTURE_HOME, missing_transcripts

from indexer.config import Settings
from indexer.service import SessionSearch


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


@pytest.fixture(scope="session")
def transcripts() -> Path:
    """The shared real transcripts' Claude home; a test that reads them fails with where they were looked for."""
    if reason := missing_transcripts():
        pytest.fail(reason, pytrace=False)
    return FIXTURE_HOME


@pytest.fixture(scope="session")
def fixture_index(transcripts: Path, standin_server: OllamaStandIn, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """All the shared transcripts, indexed once with the default model. Tests only read it."""
    import anyio

    settings = settings_for(standin_server.url, transcripts, tmp_path_factory.mktemp("fixture-index"))

    async def build() -> None:
        async with SessionSearch(settings) as index:
            await index.reindex()

    anyio.run(build)
    return settings


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start (and restart) `chroma run` on one port and path."""
    port, path, procs = free_port(), tmp_path / "chroma-server", []

    def start() -> subprocess.Popen:
        procs.append(start_chroma(path, port))
        return procs[-1]

    start.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
