"""An optional reranking stage: the top candidates go to a cross-encoder behind the `/rerank`
API that text-embeddings-inference, llama.cpp's server and vLLM share (a query and texts in,
one relevance score per text out), within a time budget.

Off unless SESSION_SEARCH_RERANK_URL is set. When the reranker is down, slow or answers
nonsense, the search keeps its own order and says so in `note`: the ranking is never lost to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio

from indexer.search import Candidate

log = logging.getLogger(__name__)


class Reranker:
    """Reorders the first `depth` candidates by a cross-encoder's scores."""

    def __init__(self, url: str, model: str | None, *, budget_s: float, depth: int):
        import httpx

        self.url, self.model, self.budget_s, self.depth = url.rstrip("/"), model, budget_s, depth
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(budget_s))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def rerank(self, query: str, ranked: list[Candidate]) -> tuple[list[Candidate], str | None]:
        """The candidates with the head reordered, and a note when that could not be done."""
        head = ranked[: self.depth]
        if len(head) < 2:
            return ranked, None
        try:
            with anyio.fail_after(self.budget_s):
                scores = await self._scores(query, [c.stored.text for c in head])
        except TimeoutError:
            return ranked, f"Not reranked: the reranker at {self.url} did not answer within {self.budget_s:g} s."
        except Exception as exc:
            log.warning("reranking failed: %s", exc)
            return ranked, f"Not reranked: the reranker at {self.url} failed ({type(exc).__name__}: {exc})."
        for candidate, score in zip(head, scores, strict=True):
            candidate.score = round(score, 4)
        # Stable: equal scores keep the fused order.
        return sorted(head, key=lambda c: -c.score) + ranked[self.depth :], None

    async def _scores(self, query: str, texts: Sequence[str]) -> list[float]:
        body: dict[str, Any] = {"query": query, "texts": list(texts), "documents": list(texts)}
        if self.model:
            body["model"] = self.model
        response = await self._client.post(f"{self.url}/rerank", json=body)
        response.raise_for_status()
        return parse_scores(response.json(), len(texts))


def parse_scores(answer: Any, n: int) -> list[float]:
    """One score per text from TEI's `[{index, score}]` or llama.cpp/vLLM's `{results: [{index, relevance_score}]}`."""
    items = answer.get("results") if isinstance(answer, dict) else answer
    if not isinstance(items, list):
        raise ValueError("the answer holds no list of scores")
    scores: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            raise ValueError("a score without an index")
        value = item.get("score", item.get("relevance_score"))
        if not isinstance(value, (int, float)):
            raise ValueError("an index without a score")
        scores[item["index"]] = float(value)
    if sorted(scores) != list(range(n)):
        raise ValueError(f"{len(scores)} scores for {n} texts")
    return [scores[i] for i in range(n)]
