"""Search: both rankings of the served collection, fused, collapsed, reranked, paged.

The ranking and shaping themselves are in search.py; the candidates come from retrieve.py.
"""

from __future__ import annotations

import anyio

from indexer.agents import labelled
from indexer.catalog import Catalog, Served
from indexer.embed import embed_query
from indexer.errors import EmbedderError, InvalidArgument, first_error
from indexer.hits import StoredHit
from indexer.ledger import Ledger
from indexer.ledger_docs import docs_filter
from indexer.models import Mode, SearchRequest, SearchResponse
from indexer.resources import Resources
from indexer.retrieve import Retriever
from indexer.search import (
    Candidate,
    collapse,
    coordinated,
    fuse_coordinated,
    keyword_scores,
    looks_exact,
    matching_projects,
    single,
    term_weights,
    to_hit,
    with_session_evidence,
    within_budget,
)
from indexer.store import StoredVectors
from indexer.terms import query_terms

CHANGED_CACHE_S = 30.0
MIN_CANDIDATES = 100  # each ranking's list, for fusion and collapsing
SNIPPET_CONTEXT = 50  # results whose texts tell which query words are rare


class Query:
    """Searches of the served collection."""

    def __init__(self, resources: Resources, catalog: Catalog):
        self.resources, self.catalog = resources, catalog

    @property
    def ledger(self) -> Ledger:
        return self.resources.ledger

    async def search(self, request: SearchRequest) -> SearchResponse:
        served = self.catalog.serving()  # on the event-loop thread: it may import chromadb (zotero-mcp#485)
        if request.mode != "keyword":
            served = await self.catalog.with_fresh_vectors(served)
        name = served.record.name
        if request.project and served.projects is None:
            served.projects = self.ledger.projects(name)
        projects = matching_projects(request.project, served.projects or []) if request.project else None
        self._check_filters(served, request)
        # The same candidate lists for every page (up to 50 results), so paging neither repeats nor skips.
        wanted = max(MIN_CANDIDATES, (request.offset + request.top_k) * 2)
        where = docs_filter(request, projects)
        retriever = Retriever(self.ledger, served.collection, name, served.count())
        mode: Mode = request.mode
        fallback: str | None = None
        keyword: list[StoredHit] = []
        coordinated_keyword: list[StoredHit] = []  # for fusion
        keyword_vectors = StoredVectors([], [])
        vector: list[float] | None = None
        nearest: list[StoredHit] = []

        def keyword_ranking() -> tuple[list[tuple[int, float]], bool]:
            """The ranking, and whether it was widened beyond the chunks holding every word.
            As written first. A question in words is also matched stemmed when too few chunks hold
            all its words as written, the same rule that widens to any of them; a string, never."""
            as_written = retriever.keyword_ranks("words", request.query, request.session_id, where, wanted)
            if looks_exact(request.query) or not as_written.widened:
                return keyword_scores([as_written.pairs]), as_written.widened
            stemmed = retriever.keyword_ranks("stems", request.query, request.session_id, where, wanted)
            return keyword_scores([as_written.pairs, stemmed.pairs]), True

        def keyword_candidates() -> tuple[list[StoredHit], list[StoredHit], StoredVectors]:
            ranked, widened = keyword_ranking()
            hits = retriever.keyword_hits_at(ranked[:wanted])
            if request.mode != "hybrid":
                return hits, [], StoredVectors([], [])
            # What fusion needs of the keyword hits alone is done here, while the vector search runs,
            # and in this one thread: each return to the event loop cost about a millisecond.
            read = retriever.keyword_vectors(hits) if not where.sql else StoredVectors([], [])
            return hits, coordinated(request.query, hits, widened=widened), read

        async def rank_keywords() -> None:  # in a worker thread: SQLite leaves the GIL while FTS5 ranks
            nonlocal keyword, coordinated_keyword, keyword_vectors
            keyword, coordinated_keyword, keyword_vectors = await anyio.to_thread.run_sync(keyword_candidates)

        async def rank_vectors() -> None:  # the query's embedding is awaited meanwhile
            nonlocal vector, nearest, mode, fallback
            try:
                vector = await self._query_vector(served, request.query)
            except EmbedderError as exc:
                if mode == "vector":
                    raise
                mode, fallback = "keyword", f"Keyword results only: the query could not be embedded. {exc}"
                return
            nearest = await retriever.nearest(vector, where, wanted)

        try:
            async with anyio.create_task_group() as both:
                if mode != "vector":
                    both.start_soon(rank_keywords)
                if mode != "keyword":
                    both.start_soon(rank_vectors)
        except BaseExceptionGroup as failure:
            raise first_error(failure) from None
        if mode == "hybrid" and vector is not None:
            vector_hits = await retriever.complete(vector, nearest, keyword, keyword_vectors, wanted)
            ranked = fuse_coordinated(vector_hits, coordinated_keyword, request.query)
        elif mode == "vector":
            ranked = single(sorted(nearest, key=lambda hit: hit.distance)[:wanted], keyword=False)  # exact scores come unsorted
        else:
            ranked = single(keyword, keyword=True)
        exchanges = collapse(ranked)
        ranked, not_reranked = await self._rerank(
            request.query, with_session_evidence(exchanges) if mode == "hybrid" else exchanges
        )
        return self._page(served, request, mode, ranked, " ".join(n for n in (fallback, not_reranked) if n) or None)

    async def _rerank(self, query: str, ranked: list[Candidate]) -> tuple[list[Candidate], str | None]:
        """The optional reranking stage (SESSION_SEARCH_RERANK_URL); a note when it could not run."""
        reranker = self.resources.reranker()
        return (ranked, None) if reranker is None else await reranker.rerank(query, ranked)

    def _query_text(self, served: Served, query: str) -> str:
        r = self.resources
        same_template = (
            served.identity.model == r.settings.model and served.identity.document_template == r.template.document_hash
        )
        return r.template.format_query(query) if same_template else served.record.query_template.replace("{query}", query)

    async def _query_vector(self, served: Served, query: str) -> list[float]:
        embedder = self.resources.embedder_for(served.identity.backend, served.identity.model, served.identity.dimensions)
        return await embed_query(embedder, self._query_text(served, query), self.resources.settings.query_timeout_s)

    def _check_filters(self, served: Served, request: SearchRequest) -> None:
        """An unknown filter value is an error, not an empty answer."""
        if request.session_id and not self.ledger.has_session(served.record.name, request.session_id):
            raise InvalidArgument(f"No indexed exchange has the session {request.session_id!r}.")
        for column, value, what in (("git_branch", request.git_branch, "branch"), ("tool", request.tool, "tool")):
            if not value:
                continue
            if served.filter_values is None:
                served.filter_values = self.ledger.filter_values(served.record.name)
            if value not in served.filter_values[column]:
                raise InvalidArgument(f"No indexed exchange has the {what} {value!r}.")
        if request.kind:
            if served.filter_values is None:
                served.filter_values = self.ledger.filter_values(served.record.name)
            kinds = served.filter_values["kind"]
            if request.kind not in kinds:
                raise InvalidArgument(
                    f"This index has no {request.kind!r} chunks: its chunker ({served.identity.chunker}) made only "
                    f"{', '.join(sorted(kinds)) or 'none'}. Use one of those, or leave kind out."
                )

    def _page(
        self, served: Served, request: SearchRequest, mode: Mode, ranked: list[Candidate], fallback: str | None
    ) -> SearchResponse:
        terms = query_terms(request.query)
        page = ranked[request.offset : request.offset + request.top_k]
        weights = term_weights(terms, [c.stored.text for c in ranked[:SNIPPET_CONTEXT]])
        titles = self.ledger.titles(str(c.stored.metadata.get("session_id", "")) for c in page)
        hits = [labelled(to_hit(c, terms, request.query, weights), c.stored.metadata, titles) for c in page]
        hits = within_budget(hits, self.resources.settings.result_tokens)
        more = request.offset + len(hits) < len(ranked)
        notes = [n for n in (fallback, self._note(bool(hits))) if n]
        if len(hits) < len(page):
            notes.append(
                f"Only {len(hits)} results fit the size budget; ask again with offset={request.offset + len(hits)} for more."
            )
        return SearchResponse(
            query=request.query,
            mode=mode,
            results=hits,
            total_chunks=served.count(),
            next_offset=request.offset + len(hits) if more else None,
            note=" ".join(notes) or None,
        )

    def _note(self, found: bool) -> str | None:
        notes = [] if found else ["No indexed chunk matches these filters."]
        changed = self.catalog.changed_files(max_age_s=CHANGED_CACHE_S)
        if changed:
            notes.append(
                f"{changed} transcript files changed since the last index; results may miss recent work (the reindex tool updates it)."
            )
        return " ".join(notes) or None
