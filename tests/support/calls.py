"""The service's calls a test makes in one line, each on a fresh `SessionSearch` closed after it."""

from __future__ import annotations

from pathlib import Path

import chromadb
from chromadb.config import Settings as ChromaSettings

from indexer.config import Settings
from indexer.models import ReadSessionRequest, ReindexOptions, ReindexReport, SearchRequest, SearchResponse, SessionPage
from indexer.service import SessionSearch
from support.ledger_reads import served_name


async def reindex(settings: Settings, **options: object) -> ReindexReport:
    async with SessionSearch(settings) as index:
        return await index.reindex(ReindexOptions(**options))


async def search(settings: Settings, query: str, **filters: object) -> list[str]:
    """The session ids of the hits, best first."""
    async with SessionSearch(settings) as index:
        response = await index.search(SearchRequest(query=query, **filters))
    return [hit.session_id for hit in response.results]


async def run_search(settings: Settings, **fields: object) -> SearchResponse:
    async with SessionSearch(settings) as index:
        return await index.search(SearchRequest(**fields))


async def read(settings: Settings, **fields: object) -> SessionPage:
    async with SessionSearch(settings) as index:
        return await index.read_session(ReadSessionRequest(**fields))


def stored_ids(data_dir: Path) -> set[str]:
    """Every chunk id in the served collection, read straight from Chroma."""
    active = served_name(data_dir)
    client = chromadb.PersistentClient(str(data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    try:
        return set(client.get_collection(active).get(include=[])["ids"])
    finally:
        chromadb.api.shared_system_client.SharedSystemClient.clear_system_cache()
