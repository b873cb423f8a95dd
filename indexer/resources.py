"""What every part of the service shares: the settings and what they derive (template,
chunker, redactor), the embedders, the ledger and the reranker, opened on first use."""

from __future__ import annotations

from indexer.chunk import ChunkerSpec
from indexer.config import Settings
from indexer.datadir import open_failure, prepare, sqlite_errors
from indexer.embed import Embedder, ModelFacts, OllamaEmbedder
from indexer.embed_openai import OpenAIEmbedder
from indexer.ledger import Ledger
from indexer.prompts import template_for
from indexer.redact import Redactor
from indexer.rerank import Reranker
from indexer.store import IndexIdentity


class Resources:
    """The resources of one data dir; `aclose` releases those that were opened."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.template = template_for(settings.model, settings.prompt_file)
        self.spec = ChunkerSpec(settings.chunker, settings.chunk_tokens, settings.chunk_overlap, settings.tool_output_chars)
        self.redactor = Redactor(settings.redact_patterns)
        self._embedders: dict[tuple[str, str, int | None], Embedder] = {}
        self._ledger: Ledger | None = None
        self._reranker: Reranker | None = None

    def embedder_for(self, backend: str, model: str, dimensions: int | None) -> Embedder:
        key = (backend, model, dimensions)
        if key not in self._embedders:
            s = self.settings
            if backend == "openai":
                key_text = s.openai_api_key.get_secret_value() if s.openai_api_key else None
                self._embedders[key] = OpenAIEmbedder(
                    s.openai_base_url or "",
                    model,
                    api_key=key_text,
                    dimensions=dimensions,
                    timeout_s=s.embed_timeout_s,
                    batch_size=s.embed_batch_size,
                )
            else:
                self._embedders[key] = OllamaEmbedder(
                    s.ollama_host,
                    model,
                    dimensions=dimensions,
                    timeout_s=s.embed_timeout_s,
                    num_ctx=s.num_ctx,
                    batch_size=s.embed_batch_size,
                )
        return self._embedders[key]

    @property
    def embedder(self) -> Embedder:
        """The embedder the settings name."""
        return self.embedder_for(self.settings.embed_backend, self.settings.model, self.settings.dimensions)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            path = self.settings.data_dir / "ledger.sqlite"
            prepare(self.settings.data_dir)
            try:
                self._ledger = Ledger(path)
            except sqlite_errors() as exc:
                raise open_failure(path, exc) from None
        return self._ledger

    @property
    def has_ledger(self) -> bool:
        """Whether a ledger exists, without creating one."""
        return self._ledger is not None or (self.settings.data_dir / "ledger.sqlite").exists()

    def reranker(self) -> Reranker | None:
        """The optional reranking stage (SESSION_SEARCH_RERANK_URL)."""
        s = self.settings
        if s.rerank_url and self._reranker is None:
            self._reranker = Reranker(s.rerank_url, s.rerank_model, budget_s=s.rerank_timeout_s, depth=s.rerank_depth)
        return self._reranker

    def identity_for(self, facts: ModelFacts) -> IndexIdentity:
        s = self.settings
        return IndexIdentity(
            s.embed_backend, s.model, facts.dimensions, self.spec.identity, self.template.document_hash, facts.fingerprint
        )

    async def identity(self) -> IndexIdentity:
        """The identity an index built with these settings has; asks the embedder for the dimensions."""
        return self.identity_for(await self.embedder.facts())

    async def aclose(self) -> None:
        for embedder in self._embedders.values():
            await embedder.aclose()
        if self._reranker is not None:
            await self._reranker.aclose()
        if self._ledger is not None:
            self._ledger.close()
