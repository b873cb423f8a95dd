"""The two rankings a search fuses: keyword matches from the ledger's FTS5 index, and the
nearest vectors from Chroma. Filters are resolved in the ledger, which indexes them; Chroma
holds vectors only and is asked for ids and distances, the texts coming from the ledger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import anyio

from indexer.errors import StoreError
from indexer.hits import StoredHit
from indexer.ledger import Ledger
from indexer.ledger_docs import DocsFilter, KeywordTable, StoredDoc, fts_phrases, fts_queries
from indexer.store import StoredVectors, VectorCollection
from indexer.terms import joined_words, starts_a_word

log = logging.getLogger(__name__)
EXACT_RESCORE = 20  # keyword candidates the vector ranking scores exactly when the ANN search missed them
KEYWORD_ALL_WORDS_ENOUGH = 10  # fewer chunks with every word than this: also rank those with any
EXACT_SUBSET = 300  # a filter keeping at most this many chunks: score them all exactly, no HNSW
OVERSAMPLE_SHARE = 0.25  # a filter keeping at least this share of chunks: post-filter an unfiltered search
OVERSAMPLE = 1.5  # how many more nearest chunks than the filter is expected to need
OVERSAMPLE_MAX = 2000  # the widest unfiltered search, when Chroma cannot take the ids


class KeywordRanks(NamedTuple):
    """One FTS5 table's ranking: (doc rowid, bm25) pairs, and whether too few chunks held every word."""

    pairs: list[tuple[int, float]]
    widened: bool


def _hit(doc: StoredDoc, score: float) -> StoredHit:
    return StoredHit(doc.id, doc.text, doc.values, score)


def stored_hits(ranked: Sequence[tuple[str, float]], docs: Mapping[str, StoredDoc]) -> list[StoredHit]:
    """(id, distance) pairs with their text and metadata from the ledger, in order; ids it lacks
    (a vector stored, its ledger row not written yet) are left out."""
    return [_hit(docs[id_], score) for id_, score in ranked if id_ in docs]


def keyword_hits(ranked: Sequence[tuple[int, float]], docs: Mapping[int, StoredDoc]) -> list[StoredHit]:
    """(doc rowid, score) pairs as hits, in order; the score is negative, lower is better (as bm25's)."""
    return [_hit(docs[r], score) for r, score in ranked if r in docs]


@dataclass(frozen=True, slots=True)
class Retriever:
    """Candidates from one served collection."""

    ledger: Ledger
    collection: VectorCollection
    name: str
    total: int  # chunks in the collection

    def keyword_ranks(
        self, table: KeywordTable, query: str, session_id: str | None, docs_filter: DocsFilter, wanted: int
    ) -> KeywordRanks:
        """(doc rowid, bm25) of the chunks with all the query's words in `table`, best first; chunks with
        any of them only when those are too few (then `widened`). Safe in a worker thread: it reads
        through the ledger's per-thread connection."""
        every, anyone = fts_queries(query)
        span = self.ledger.session_span(self.name, session_id) if session_id else None
        ranked = self.ledger.keyword_search(self.name, every, docs_filter, wanted, span, table) if every else []
        widened = len(ranked) < KEYWORD_ALL_WORDS_ENOUGH
        if widened and anyone:
            seen = {rowid for rowid, _ in ranked}
            ranked += [
                pair
                for pair in self.ledger.keyword_search(self.name, anyone, docs_filter, wanted, span, table)
                if pair[0] not in seen
            ]
        elif every and len(ranked) >= wanted and (phrases := fts_phrases(query)) and not self._all_hold(ranked, query):
            ranked = self._with_joined_holders(table, every, phrases, ranked, span, docs_filter, wanted)
        return KeywordRanks(ranked[:wanted], widened)

    def _all_hold(self, ranked: Sequence[tuple[int, float]], query: str) -> bool:
        """Whether every ranked chunk holds one of the query's hyphen-joined words, read as the word
        count reads them (a word starting with it): then the chunks holding one outside the list
        rank below all of it, and nothing is missed."""
        joined = joined_words(query)
        texts = self.ledger.docs_at([rowid for rowid, _ in ranked]).values()
        return all(any(starts_a_word(doc.text.lower(), word) for word in joined) for doc in texts)

    def _with_joined_holders(
        self,
        table: KeywordTable,
        every: str,
        phrases: str,
        ranked: list[tuple[int, float]],
        span: tuple[int, int] | None,
        docs_filter: DocsFilter,
        wanted: int,
    ) -> list[tuple[int, float]]:
        """`ranked` (a full list of the chunks holding every word) with the best chunks that hold
        the query's hyphen-joined words joined put in, at their own bm25, in place of the worst of
        those that do not hold them. Those holding them already in `ranked` are among the best
        holders, so they are all kept.

        BM25 reads `continue-on-error` as "continue" and "error": when more chunks hold those apart
        than the list takes, the ones holding the flag fall outside it (at 100k synthetic chunks,
        93 of the best 100 holding it), and no later count of the joined words could bring them
        back (README, "Retrieval quality")."""
        holders = self.ledger.keyword_search(self.name, every, docs_filter, wanted, span, table, holding=phrases)
        held = {rowid for rowid, _ in holders}
        others = [pair for pair in ranked if pair[0] not in held]
        return sorted(holders + others[: wanted - len(holders)], key=lambda pair: pair[1])

    def keyword_hits_at(self, ranked: Sequence[tuple[int, float]]) -> list[StoredHit]:
        """(doc rowid, score) pairs as hits with their texts, in order. Safe in a worker thread."""
        return keyword_hits(ranked, self.ledger.docs_at([rowid for rowid, _ in ranked]))

    def nearest_hits(self, nearest: Sequence[tuple[str, float]]) -> list[StoredHit]:
        """(id, distance) pairs as hits with their texts, in order. Safe in a worker thread, so the
        texts are read beside the keyword ranking rather than after it."""
        return stored_hits(nearest, self.ledger.docs_for(self.name, [id_ for id_, _ in nearest]))

    def keyword_vectors(self, keyword: Sequence[StoredHit]) -> StoredVectors:
        """The stored embeddings of the keyword hits fusion weighs most, read as soon as they are
        known, while an unfiltered vector search may still run (with a filter, most are found or
        scored exactly by it, and `complete` reads what it missed); none when Chroma cannot read
        them. Safe in a worker thread."""
        try:
            return self.collection.vectors([h.id for h in keyword[:EXACT_RESCORE]])
        except StoreError as exc:
            # While another process writes, the ledger can name vectors this process's Chroma
            # client does not hold yet (chroma#3792); they are left to the keyword ranking.
            log.info("exact scoring skipped: %s", exc)
            return StoredVectors([], [])

    async def complete(
        self, vector: list[float], nearest: list[StoredHit], keyword: list[StoredHit], read: StoredVectors, wanted: int
    ) -> list[StoredHit]:
        """The vector ranking: the nearest hits, and the keyword candidates the approximate search
        missed, scored exactly (from the vectors `read` beside the search, the rest read now) and
        ranked in, so a poorly connected vector is never lost to hybrid."""
        seen = {h.id for h in nearest}
        # The best keyword hits are the ones fusion weighs; their exact scores are worth a read.
        missed = {h.id: h for h in keyword[:EXACT_RESCORE] if h.id not in seen}
        held = set(read.ids)
        unread = [id_ for id_ in missed if id_ not in held]
        scored = read.only(set(missed)).distances(vector) + (await self._exact(vector, unread) if unread else [])
        rescored = [StoredHit(id_, missed[id_].text, missed[id_].metadata, distance) for id_, distance in scored]
        return sorted(nearest + rescored, key=lambda hit: hit.distance)[:wanted]

    async def nearest(self, vector: list[float], docs_filter: DocsFilter, wanted: int) -> list[StoredHit]:
        """The nearest chunks the filter keeps, with their texts. Unfiltered, the search and the read
        run in one worker thread: each return to the event loop between steps cost about a millisecond."""
        if not docs_filter.sql:
            return await anyio.to_thread.run_sync(lambda: self.nearest_hits(self.collection.query(vector, wanted)))
        return await anyio.to_thread.run_sync(self.nearest_hits, await self._filtered(vector, docs_filter, wanted))

    async def _filtered(self, vector: list[float], docs_filter: DocsFilter, wanted: int) -> list[tuple[str, float]]:
        """(id, distance) of the nearest chunks a filter keeps.

        Chroma's own filtered search cost 4-6x an unfiltered one at 100k chunks. A few chunks
        are scored exactly; a filter keeping a large share post-filters a wider unfiltered
        search; other subsets go to Chroma as ids.
        """
        few = self.ledger.matching_ids(self.name, docs_filter, EXACT_SUBSET)
        if few is not None:
            return await self._exact(vector, few)
        ids = set(self.ledger.matching_ids(self.name, docs_filter, self.total) or ())
        if len(ids) / max(1, self.total) >= OVERSAMPLE_SHARE and (found := await self._post_filtered(vector, ids, wanted)):
            return found
        try:
            return await anyio.to_thread.run_sync(lambda: self.collection.query(vector, wanted, ids=list(ids)))
        except StoreError as exc:
            # Chroma refuses ids it does not hold: another process's newest chunks (chroma#3792).
            log.info("search by ids failed, post-filtering a wider search instead: %s", exc)
            return await self._post_filtered(vector, ids, wanted, OVERSAMPLE_MAX) or []

    async def _post_filtered(
        self, vector: list[float], ids: set[str], wanted: int, at_most: int | None = None
    ) -> list[tuple[str, float]] | None:
        """The nearest of ids, from an unfiltered search wide enough to hold `wanted` of them; None when it did not."""
        n = min(self.total, at_most or math.ceil(wanted * OVERSAMPLE * self.total / max(1, len(ids))))
        found = await anyio.to_thread.run_sync(self.collection.query, vector, n)
        kept = [pair for pair in found if pair[0] in ids]
        return kept[:wanted] if len(kept) >= wanted or at_most else None

    async def _exact(self, vector: list[float], ids: list[str]) -> list[tuple[str, float]]:
        """Exact distances of ids; none when Chroma cannot read them."""
        if not ids:
            return []
        try:
            return await anyio.to_thread.run_sync(self.collection.distances, vector, ids)
        except StoreError as exc:
            # While another process writes, the ledger can name vectors this process's Chroma
            # client does not hold yet (chroma#3792); they are left to the keyword ranking.
            log.info("exact scoring skipped: %s", exc)
            return []
