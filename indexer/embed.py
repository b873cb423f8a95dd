"""Embedders: the shared batching and checks, and Ollama's /api/embed.

`Embedder` owns batching and checks what comes back: a vector of the wrong length is an
error, and an input the model returns NaN for is skipped and reported as None. A backend
implements `_embed_request` and `_describe`. The Ollama one sends the same options on
every call (a change would reload the model), with an explicit timeout, and translates
the ollama client's errors into ours.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from indexer.errors import DimensionMismatch, EmbedderError, EmbedderUnreachable, ModelNotPulled

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=EmbedderError)
RETRIES = 3
RETRY_DELAY_S = 0.5
TRUNCATION_RATIO = 0.25  # tiktoken only estimates the model's tokens: flag only a gross shortfall
TRUNCATION_MIN_TOKENS = 200  # below this the two tokenizers differ too much to tell
Vector = list[float]


class NaNRejected(Exception):
    """The server refused a batch because some input embeds to NaN (ollama#12921)."""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the server says about the model, with the dimensions we will store."""

    model: str
    dimensions: int
    native_dimensions: int
    context_length: int | None
    fingerprint: str = ""  # identifies the weights (Ollama's digest), so a re-pulled model is a new index


def summarise_answer(text: str) -> str:
    """A server's answer body in one short line: an HTML page by its title, never the page itself."""
    body = text.strip()
    if re.search(r"<(!doctype|html|head|body)\b", body[:2000], re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
        return f"an HTML page titled {' '.join(title.group(1).split())[:80]!r}" if title else "an HTML page"
    line = " ".join(body.split())
    return repr(line[:160] + ("..." if len(line) > 160 else "")) if line else "an empty body"


def _is_html(text: str) -> bool:
    return summarise_answer(text).startswith("an HTML page")


async def embed_query(embedder: Embedder, text: str, deadline_s: float) -> Vector:
    """A query's vector within deadline_s: a search must not wait minutes for a stuck server."""
    with anyio.move_on_after(deadline_s):
        return await embedder.embed_one(text)
    raise embedder.too_slow("embed the query", deadline_s)


def _find(info: dict[str, Any], suffix: str) -> int | None:
    value = next((v for k, v in info.items() if k.endswith(suffix)), None)
    return int(value) if isinstance(value, int | float) else None


class Embedder:
    """Batching and checks shared by every backend."""

    backend = "base"
    host: str
    model: str
    batch_size: int
    truncated_batches: int = 0

    async def facts(self) -> ModelFacts:
        raise NotImplementedError

    async def version(self) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def _embed_request(self, texts: list[str]) -> list[Vector]:
        raise NotImplementedError

    def _describe(self) -> str:
        """The server, for messages."""
        raise NotImplementedError

    def _error(self, kind: type[E], message: str, status: int | None = None) -> E:
        """An error of ours carrying this server's host and model."""
        return kind(message, host=self.host, model=self.model, status=status)

    def too_slow(self, what: str, deadline_s: float) -> EmbedderUnreachable:
        """The error for a call that missed its deadline (SESSION_SEARCH_QUERY_TIMEOUT_S)."""
        return self._error(
            EmbedderUnreachable,
            f"{self._describe()} did not {what} within {deadline_s:g} s (SESSION_SEARCH_QUERY_TIMEOUT_S): "
            "it is stuck or overloaded. Restart it, or check OLLAMA_HOST.",
        )

    async def _embed_isolating_nan(self, texts: list[str]) -> list[Vector | None]:
        """Embed texts; when Ollama rejects the batch for NaN, bisect to find the bad inputs."""
        try:
            return list(await self._embed_request(texts))
        except NaNRejected:
            if len(texts) == 1:
                log.warning("Ollama returned NaN for one input (%d chars); skipped", len(texts[0]))
                return [None]
            middle = len(texts) // 2
            return await self._embed_isolating_nan(texts[:middle]) + await self._embed_isolating_nan(texts[middle:])

    def _check(self, vectors: list[Vector | None], expected: int, sent: int) -> list[Vector | None]:
        if len(vectors) != sent:
            raise self._error(EmbedderError, f"{self._describe()} returned {len(vectors)} vectors for {sent} inputs")
        checked: list[Vector | None] = []
        for vector in vectors:
            if vector is not None and len(vector) != expected:
                raise self._error(
                    DimensionMismatch,
                    f"{self._describe()} returned {len(vector)}-dimensional vectors for {self.model!r}, but the index holds "
                    f"{expected} dimensions. Nothing was stored. Check SESSION_SEARCH_MODEL and SESSION_SEARCH_DIMENSIONS, "
                    "or rebuild with `session-search reindex --full`.",
                )
            finite = vector is not None and all(math.isfinite(x) for x in vector)
            checked.append(vector if finite else None)
        return checked

    async def embed(self, texts: list[str]) -> list[Vector | None]:
        """Vectors for texts, in order; None for an input the model could not embed (NaN)."""
        expected = (await self.facts()).dimensions
        vectors: list[Vector | None] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(self._check(await self._embed_isolating_nan(batch), expected, len(batch)))
        return vectors

    async def warm(self) -> None:
        """Load the model before a big run, so the first batch does not pay for it (and fail fast)."""
        await self.embed(["warm-up"])

    async def embed_one(self, text: str) -> Vector:
        """A single vector (a query). Raises EmbedderError if the model returns NaN."""
        (vector,) = await self.embed([text])
        if vector is None:
            raise self._error(EmbedderError, f"{self.model!r} returned NaN for this query; rephrase it slightly and retry.")
        return vector


class OllamaEmbedder(Embedder):
    """An embedding model served by Ollama."""

    backend = "ollama"

    def __init__(self, host: str, model: str, *, dimensions: int | None, timeout_s: float, num_ctx: int, batch_size: int):
        import httpx
        import ollama

        self.host, self.model, self.timeout_s = host, model, timeout_s
        self.requested_dimensions = dimensions
        self.batch_size = batch_size
        self.options = {"num_ctx": num_ctx}
        self._client = ollama.AsyncClient(host=host, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))
        self._facts: ModelFacts | None = None
        self.truncated_batches = 0

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run one request, retrying 5xx answers, and translate every failure."""
        import httpx
        import ollama

        for attempt in range(1, RETRIES + 1):
            try:
                return await request()
            except ollama.ResponseError as exc:
                if exc.status_code >= 500 and attempt < RETRIES:
                    log.warning("Ollama answered %s (%s); retrying", exc.status_code, exc.error)
                    await anyio.sleep(RETRY_DELAY_S * attempt)
                    continue
                raise self._translate(exc) from None
            except ConnectionError:
                raise self._unreachable("nothing is listening there") from None
            except httpx.TimeoutException:
                if attempt < RETRIES:
                    log.warning("Ollama did not answer within %g s; retrying", self.timeout_s)
                    await anyio.sleep(RETRY_DELAY_S * attempt)
                    continue
                raise self._unreachable(f"no answer within {self.timeout_s:g} s, {RETRIES} tries") from None
            except httpx.HTTPError as exc:
                raise self._unreachable(f"{type(exc).__name__}: {exc}") from None
            except ValueError:  # a 200 answer that is not Ollama's JSON (pydantic and JSON errors are ValueErrors)
                raise self._not_ollama("an answer that is not Ollama's JSON") from None
        raise AssertionError("unreachable")

    def _unreachable(self, why: str) -> EmbedderUnreachable:
        return self._error(
            EmbedderUnreachable,
            f"Cannot reach Ollama at {self.host} ({why}). Start it with `ollama serve`, "
            "or set OLLAMA_HOST to the host where it runs.",
        )

    def _not_ollama(self, what: str, status: int | None = None) -> EmbedderError:
        return self._error(
            EmbedderError,
            f"Something answers at {self.host}, but not Ollama: it sent {what}. "
            "Set OLLAMA_HOST to Ollama's address (http://127.0.0.1:11434 by default).",
            status,
        )

    def _translate(self, exc: Any) -> Exception:
        message, status = str(exc.error), exc.status_code
        if _is_html(message) or (status == 404 and "not found" not in message):
            return self._not_ollama(f"HTTP {status} with {summarise_answer(message)}", status)
        if status == 404:
            return self._error(
                ModelNotPulled,
                f"The embedding model {self.model!r} is not available on Ollama at {self.host}. "
                f"Pull it with: ollama pull {self.model}",
                status,
            )
        if status == 400 and "nan" in message.lower():
            return NaNRejected(message)
        return self._error(EmbedderError, f"Ollama at {self.host} answered HTTP {status}: {summarise_answer(message)}", status)

    async def version(self) -> str:
        """Ollama's version string."""
        # The client has no version(); its request method still maps errors the same way.
        response = await self._call(lambda: self._client._request_raw("GET", "/api/version"))  # type: ignore[no-untyped-call]
        return str(response.json().get("version", "unknown"))

    async def facts(self) -> ModelFacts:
        """Read the model's dimensions and context length from /api/show (cached)."""
        if self._facts is None:
            shown = await self._call(lambda: self._client.show(self.model))
            info = dict(shown.modelinfo or {})
            native = _find(info, ".embedding_length")
            if native is None:
                raise self._error(
                    EmbedderError,
                    f"Ollama at {self.host} reports no embedding length for {self.model!r}: is it an embedding model?",
                )
            if self.requested_dimensions and self.requested_dimensions > native:
                raise self._error(
                    EmbedderError,
                    f"SESSION_SEARCH_DIMENSIONS={self.requested_dimensions} is larger than {self.model!r}'s {native} dimensions",
                )
            dims = self.requested_dimensions or native
            self._facts = ModelFacts(self.model, dims, native, _find(info, ".context_length"), await self._digest())
        return self._facts

    async def _digest(self) -> str:
        """The pulled model's digest from /api/tags: a new one means new weights behind the same name."""
        listed = await self._call(lambda: self._client.list())
        names = {self.model, f"{self.model}:latest"}
        found = next((m for m in listed.models if m.model in names), None)
        return (found.digest or "")[:16] if found else ""

    async def _embed_request(self, texts: list[str]) -> list[Vector]:
        response = await self._call(
            lambda: self._client.embed(
                model=self.model,
                input=texts,
                truncate=True,
                options=self.options,
                dimensions=self.requested_dimensions,
            )
        )
        self._check_truncation(texts, response.prompt_eval_count)
        return [list(v) for v in response.embeddings]

    def _check_truncation(self, texts: list[str], evaluated: int | None) -> None:
        """Ollama truncates silently (ollama#14259): far fewer tokens evaluated than sent means it did."""
        from indexer.chunk import count_tokens

        sent = sum(count_tokens(t) for t in texts)
        if evaluated and sent >= TRUNCATION_MIN_TOKENS and evaluated < sent * TRUNCATION_RATIO:
            self.truncated_batches += 1
            log.warning(
                "Ollama evaluated %d tokens of about %d sent: inputs were probably truncated; lower SESSION_SEARCH_CHUNK_TOKENS or raise SESSION_SEARCH_NUM_CTX",
                evaluated,
                sent,
            )

    def _describe(self) -> str:
        return f"Ollama at {self.host}"
