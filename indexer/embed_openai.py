"""Embeddings from an OpenAI-compatible `/v1/embeddings` server: TEI, vLLM, llama.cpp, or
Ollama's own /v1. For users who serve Qwen3-Embedding on a GPU elsewhere.

The API key comes from SESSION_SEARCH_OPENAI_API_KEY and is never logged or shown in a
message. The server has no /api/show: the dimensions come from one probe embedding.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio

from indexer.embed import RETRIES, RETRY_DELAY_S, Embedder, ModelFacts, NaNRejected, Vector, summarise_answer
from indexer.errors import EmbedderError, EmbedderUnreachable

log = logging.getLogger(__name__)
PROBE = "probe"


class OpenAIEmbedder(Embedder):
    """An embedding model behind an OpenAI-compatible HTTP API."""

    backend = "openai"

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None, dimensions: int | None, timeout_s: float, batch_size: int
    ):
        import httpx

        self.host, self.model, self.timeout_s = base_url.rstrip("/"), model, timeout_s
        self.requested_dimensions = dimensions
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.host, headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        )
        self._facts: ModelFacts | None = None

    def _describe(self) -> str:
        return f"The embedding server at {self.host}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def version(self) -> str:
        return "openai-compatible"

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /embeddings, retrying 5xx and timeouts, with every failure translated."""
        import httpx

        for attempt in range(1, RETRIES + 1):
            try:
                response = await self._client.post("/embeddings", json=body)
            except httpx.ConnectError:
                raise self._error(
                    EmbedderUnreachable,
                    f"Cannot reach the embedding server at {self.host}. Start it, or fix SESSION_SEARCH_OPENAI_BASE_URL.",
                ) from None
            except httpx.TimeoutException:
                if attempt < RETRIES:
                    await anyio.sleep(RETRY_DELAY_S * attempt)
                    continue
                raise self._error(
                    EmbedderUnreachable, f"{self._describe()} did not answer within {self.timeout_s:g} s, {RETRIES} tries."
                ) from None
            if response.status_code >= 500 and attempt < RETRIES:
                log.warning("%s answered %s; retrying", self._describe(), response.status_code)
                await anyio.sleep(RETRY_DELAY_S * attempt)
                continue
            return self._answer(response)
        raise AssertionError("unreachable")

    def _answer(self, response: Any) -> dict[str, Any]:
        text, status = summarise_answer(response.text), response.status_code
        if status in (401, 403):
            raise self._error(
                EmbedderError,
                f"{self._describe()} refused the API key (HTTP {status}); check SESSION_SEARCH_OPENAI_API_KEY.",
                status,
            )
        if status == 404:  # no such model, or no such path: not Ollama's ModelNotPulled, which `ollama pull` fixes
            raise self._error(EmbedderError, f"{self._describe()} has no model {self.model!r} (HTTP 404: {text}).", status)
        if status == 400 and "nan" in text.lower():
            raise NaNRejected(text)
        if status >= 400:
            raise self._error(EmbedderError, f"{self._describe()} answered HTTP {status}: {text}", status)
        try:
            body: dict[str, Any] = response.json()
            return body
        except ValueError:
            raise self._error(EmbedderError, f"{self._describe()} answered with something that is not JSON", status) from None

    async def _embed_request(self, texts: list[str]) -> list[Vector]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.requested_dimensions:
            body["dimensions"] = self.requested_dimensions
        data = (await self._post(body)).get("data")
        if not isinstance(data, list):
            raise self._error(EmbedderError, f"{self._describe()} answered without a data list")
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = [list(item.get("embedding") or []) for item in ordered]
        if any(not all(math.isfinite(x) for x in v) for v in vectors) and len(texts) > 1:
            raise NaNRejected("non-finite values")
        return vectors

    async def facts(self) -> ModelFacts:
        """Dimensions from a probe embedding (the API has no model metadata)."""
        if self._facts is None:
            (vector,) = await self._embed_request([PROBE])
            self._facts = ModelFacts(self.model, len(vector), len(vector), None, fingerprint=f"openai:{self.model}")
        return self._facts
