"""The vector store: one Chroma collection, embedded (PersistentClient) or a server (HttpClient).

The collection is created with embedding_function=None and cosine space, and we always
pass our own vectors, so Chroma never downloads its default model. Its metadata records
the index identity; opening it with another identity is an error, never silent mixing.
Chroma's calls are blocking: callers in async code run them in a worker thread, but
`ChromaStore.open` (which imports chromadb) must run on the main thread (zotero-mcp#485).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from indexer.chunk import Chunk, MetadataValue
from indexer.errors import IndexEmpty, IndexMismatch, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

COLLECTION = "session_search"
SCHEMA_VERSION = 1
HNSW = {"space": "cosine", "ef_construction": 100, "ef_search": 100, "max_neighbors": 16}


@dataclass(frozen=True, slots=True)
class IndexIdentity:
    """What makes vectors comparable: a change in any field means a new index."""

    model: str
    dimensions: int
    chunker: str
    document_template: str
    schema: int = SCHEMA_VERSION

    def as_metadata(self) -> dict[str, str | int]:
        return {f"ss_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> IndexIdentity | None:
        values = {k.removeprefix("ss_"): v for k, v in (metadata or {}).items() if k.startswith("ss_")}
        try:
            return cls(**values)
        except TypeError:
            return None

    def differences(self, other: IndexIdentity) -> list[str]:
        mine, theirs = asdict(self), asdict(other)
        return [f"{k} {theirs[k]!r} (now {mine[k]!r})" for k in mine if mine[k] != theirs[k]]


def describe_store(data_dir: Path, chroma_url: str | None) -> str:
    """Where the vectors live, in words for messages."""
    return f"the Chroma server at {chroma_url}" if chroma_url else f"the index in {data_dir / 'chroma'}"


@dataclass(frozen=True, slots=True)
class StoredHit:
    id: str
    text: str
    metadata: dict[str, MetadataValue]
    distance: float


def _chroma_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, ConnectionError, ValueError, RuntimeError)


class ChromaStore:
    """One Chroma collection holding chunk vectors, documents and metadata."""

    def __init__(self, client: ClientAPI, where: str):
        self._client = client
        self.where = where
        self._collection: Collection | None = None

    @classmethod
    def open(cls, data_dir: Path, chroma_url: str | None) -> ChromaStore:
        """Connect to the embedded store in data_dir, or to the server at chroma_url."""
        import chromadb
        from chromadb.config import Settings

        # _env_file=None: chromadb's Settings would otherwise read a .env in the cwd.
        settings = Settings(anonymized_telemetry=False, _env_file=None)  # type: ignore[call-arg]
        where = describe_store(data_dir, chroma_url)
        if chroma_url:
            parts = urlsplit(chroma_url)
            port = parts.port or (443 if parts.scheme == "https" else 8000)
            try:
                client = chromadb.HttpClient(host=parts.hostname or "127.0.0.1", port=port, ssl=parts.scheme == "https", settings=settings)
            except Exception as exc:  # chromadb raises bare ValueError/Exception on a failed handshake
                raise StoreError(f"Cannot reach {where}: {exc}. Start it with `chroma run --path DIR`, or unset SESSION_SEARCH_CHROMA_URL.") from None
            return cls(client, where)
        path = data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return cls(chromadb.PersistentClient(path=str(path), settings=settings), where)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (StoreError, IndexMismatch, IndexEmpty):
            raise
        except _chroma_errors() as exc:
            raise StoreError(f"Chroma failed to {action} ({self.where}): {exc}") from None

    def _find(self) -> Collection | None:
        with self._errors("list collections"):
            names = {c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()}
            if COLLECTION not in names:
                return None
            return self._client.get_collection(COLLECTION, embedding_function=None)

    def existing(self) -> tuple[IndexIdentity | None, int] | None:
        """The identity and size of the collection as it is on disk, or None if there is none."""
        collection = self._find()
        if collection is None:
            return None
        with self._errors("count chunks"):
            return IndexIdentity.from_metadata(collection.metadata), collection.count()

    def attach(self, expected: IndexIdentity) -> None:
        """Use the existing collection; it must have been built with `expected`."""
        collection = self._find()
        if collection is None:
            raise IndexEmpty("Nothing is indexed yet. Run `session-search reindex` (or the reindex tool) first.")
        self._check(collection, expected)
        self._collection = collection

    def _check(self, collection: Collection, expected: IndexIdentity) -> None:
        found = IndexIdentity.from_metadata(collection.metadata)
        if found is None:
            raise IndexMismatch(f"{self.where} was not made by this version of session-search. Rebuild it with `session-search reindex --full`.")
        if found != expected:
            raise IndexMismatch(
                f"The index was built with {', '.join(expected.differences(found))}. "
                "Rebuild it with `session-search reindex --full`, or go back to the old settings."
            )

    def create_or_attach(self, expected: IndexIdentity, *, reset: bool) -> None:
        """Open the collection for writing, recreating it when reset is true."""
        with self._errors("create the collection"):
            existing = self._find()
            if existing is not None and reset:
                self._client.delete_collection(COLLECTION)
                existing = None
            if existing is None:
                existing = self._client.create_collection(
                    COLLECTION, configuration={"hnsw": HNSW}, metadata=expected.as_metadata(), embedding_function=None
                )
        self._check(existing, expected)
        self._collection = existing

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            raise IndexEmpty("Nothing is indexed yet. Run `session-search reindex` (or the reindex tool) first.")
        return self._collection

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        if not chunks:
            return
        with self._errors("store vectors"):
            self.collection.upsert(
                ids=[c.id for c in chunks],
                embeddings=[list(v) for v in vectors],
                documents=[c.text for c in chunks],
                metadatas=[c.metadata for c in chunks],  # type: ignore[misc]
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with self._errors("delete chunks"):
                self.collection.delete(ids=list(ids))

    def count(self) -> int:
        with self._errors("count chunks"):
            return self.collection.count()

    def query(self, vector: Sequence[float], n: int, where: dict[str, Any] | None) -> list[StoredHit]:
        with self._errors("search"):
            found = self.collection.query(
                query_embeddings=[list(vector)],
                n_results=n,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            )
        ids = found["ids"][0]
        docs = (found.get("documents") or [[]])[0] or []
        metas = (found.get("metadatas") or [[]])[0] or []
        dists = (found.get("distances") or [[]])[0] or []
        return [StoredHit(i, d or "", dict(m or {}), float(s)) for i, d, m, s in zip(ids, docs, metas, dists, strict=True)]


def forget_open_clients() -> None:
    """Drop chromadb's per-path client cache, so the next open sees other processes' writes (chroma#3792)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
