"""SessionSearch: the one public entry. The CLI and the MCP tools both call its `reindex`,
`search`, `read_session` and `info`, so they share every code path.

A thin facade over the parts of the house: the shared resources (resources.py), the
catalog of served and building collections (catalog.py), the reindex run (reindex.py),
search (query.py), read_session (sessions.py) and status (status.py). Use it as an async
context manager: `async with SessionSearch(settings) as service: ...`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from indexer import models
from indexer.catalog import Catalog, Served
from indexer.config import Settings
from indexer.embed import Embedder, ModelFacts
from indexer.errors import IndexEmpty
from indexer.ledger import Ledger
from indexer.pipeline import ProgressFn
from indexer.query import Query
from indexer.reindex import Reindexer
from indexer.resources import Resources
from indexer.searcher_client import SearcherClient
from indexer.sessions import read_session
from indexer.status import info
from indexer.store import IndexIdentity


class SessionSearch:
    """The index of one data dir: reindex it, search it, describe it."""

    def __init__(self, settings: Settings):
        self.resources = r = Resources(settings)
        self.settings, self.template, self.spec, self.redactor = r.settings, r.template, r.spec, r.redactor
        self.catalog = Catalog(self.resources)
        self._reindexer = Reindexer(self.resources, self.catalog)
        self._query = Query(self.resources, self.catalog)
        self._searcher: SearcherClient | None = None

    @property
    def searcher(self) -> SearcherClient | None:
        """Set by `serve`: reads go to the shared searcher, and reindexes write Chroma from a child
        process, so that a server never loads the index (README, "Several processes, one index")."""
        return self._searcher

    @searcher.setter
    def searcher(self, client: SearcherClient | None) -> None:
        self._searcher = client
        self._reindexer.writes_in_child = client is not None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.resources.aclose()
        if self.searcher is not None:
            await self.searcher.aclose()

    @property
    def embedder(self) -> Embedder:
        """The embedder the settings name."""
        return self.resources.embedder

    @property
    def ledger(self) -> Ledger:
        return self.resources.ledger

    def _identity(self, facts: ModelFacts) -> IndexIdentity:
        return self.resources.identity_for(facts)

    async def identity(self) -> IndexIdentity:
        """The identity an index built with these settings has; asks Ollama for the dimensions."""
        return await self.resources.identity()

    def _serving(self) -> Served:
        return self.catalog.serving()

    async def reindex(
        self, options: models.ReindexOptions | None = None, progress: ProgressFn | None = None
    ) -> models.ReindexReport:
        """Index new and changed transcripts into the index these settings describe.

        Raises:
            IndexBusy: another process holds the writer lock.
            EmbedderError, StoreError: a service failed; what was stored so far is kept.
        """
        return await self._reindexer.reindex(options or models.ReindexOptions(), progress)

    async def keep_fresh(self, interval_s: float) -> None:
        """Reindex at start and then every interval_s seconds; never raises, yields to other writers."""
        await self._reindexer.keep_fresh(interval_s)

    async def search(self, request: models.SearchRequest) -> models.SearchResponse:
        """The exchanges that best match the query, within the request's filters, best first.

        Hybrid fuses vector and keyword rankings; when Ollama cannot embed the query it
        answers from keywords alone and says so.
        """
        if self.searcher is not None:
            return await self.searcher.call("search", request, models.SearchResponse)
        return await self._query.search(request)

    async def list_sessions(self, request: models.ListSessionsRequest) -> models.ListSessionsResponse:
        """Indexed sessions, latest activity first; from the ledger alone, so it answers without Ollama."""
        from indexer.timeline import list_sessions

        active = self.ledger.active
        if active is None:
            raise IndexEmpty(self.catalog.empty_message())
        return list_sessions(self.ledger, active, request, self.settings.result_tokens)

    async def read_session(self, request: models.ReadSessionRequest) -> models.SessionPage:
        """Messages of one session around a message or hit, in order; from the index if the transcript is gone."""
        if self.searcher is not None:
            return await self.searcher.call("read_session", request, models.SessionPage)
        name = self.catalog.serving().record.name
        return await read_session(self.ledger, name, self.settings, self.redactor.redact_text, request)

    def changed_files(self, max_age_s: float = 0.0) -> int:
        """Transcript files new or changed since the served index was last updated."""
        return self.catalog.changed_files(max_age_s)

    def stored_ids(self) -> dict[str, set[str]]:
        """Chunk ids of the served index in Chroma, in the ledger and in the keyword index: for consistency checks."""
        served = self.catalog.serving()
        recorded, keyword = self.ledger.ids(served.record.name)
        return {"vectors": served.collection.ids(), "ledger": recorded, "keywords": keyword}

    async def info(self) -> models.ModelInfo:
        """The model, templates and index state; service failures are reported, not raised."""
        if self.searcher is not None:
            return await self.searcher.call("info", None, models.ModelInfo)
        return await info(self.resources, self.catalog)
