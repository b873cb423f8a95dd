"""The vector store: Chroma collections, embedded (PersistentClient) or a server (HttpClient).

Each index identity (model, dimensions, chunker, document template) gets its own
collection, so a new model is built beside the old one and vectors never mix. Collections
are created with embedding_function=None and cosine space, and we always pass our own
vectors, so Chroma never downloads its default model. Chroma's calls block: async callers
run them in a worker thread, but `ChromaStore.open` (which imports chromadb) must run on
the main thread (zotero-mcp#485).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from indexer.chunk import Chunk
from indexer.errors import StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateHNSWConfiguration
    from chromadb.api.models.Collection import Collection

    from indexer.config import ChromaServer

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
HNSW: CreateHNSWConfiguration = {"space": "cosine", "ef_construction": 100, "ef_search": 100, "max_neighbors": 16}
WRITE_BATCH = 1000  # below Chroma's max batch (5,461 embedded)


@dataclass(frozen=True, slots=True)
class IndexIdentity:
    """What makes vectors comparable: a change in any field means a new collection."""

    backend: str
    model: str
    dimensions: int
    chunker: str
    document_template: str
    fingerprint: str = ""  # the weights behind the model name (Ollama digest)
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexIdentity | None:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return None

    def differences(self, other: IndexIdentity) -> list[str]:
        """Fields where other differs from self, as 'field old (now new)'."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k} {theirs[k]!r} (now {mine[k]!r})" for k in mine if mine[k] != theirs[k]]

    def new_collection_name(self) -> str:
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:12]
        return f"ss-{digest}-{secrets.token_hex(3)}"


def describe_store(data_dir: Path, server: ChromaServer | None) -> str:
    """Where the vectors live, in words for messages."""
    return server.describe() if server else f"the index in {data_dir / 'chroma'}"


def _chroma_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, ConnectionError, ValueError, RuntimeError, OSError)


class _Errors:
    """Translates Chroma's failures into StoreError, naming the store."""

    def __init__(self, where: str):
        self.where = where

    @contextmanager
    def __call__(self, action: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except _chroma_errors() as exc:
            raise StoreError(f"Chroma failed to {action} ({self.where}): {exc}") from None


class VectorCollection:
    """One collection: chunk vectors by chunk id (their texts and metadata are in the ledger)."""

    def __init__(self, collection: Collection, errors: _Errors):
        self._collection = collection
        self._errors = errors
        self.name = collection.name

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        for start in range(0, len(chunks), WRITE_BATCH):
            part = chunks[start : start + WRITE_BATCH]
            with self._errors("store vectors"):
                # Vectors only: texts and metadata live in the ledger, which answers filters and
                # fills in results; storing them here too made every write 2-3x slower.
                batch: list[Sequence[float]] = [list(v) for v in vectors[start : start + WRITE_BATCH]]
                self._collection.upsert(ids=[c.id for c in part], embeddings=batch)

    def close(self) -> None:
        """Nothing to release here; a collection written from another process stops it."""

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), WRITE_BATCH):
            with self._errors("delete chunks"):
                self._collection.delete(ids=list(ids[start : start + WRITE_BATCH]))

    def missed_writes(self, chunk_id: str) -> bool:
        """Whether this client missed another process's writes: it knows chunk_id (the metadata
        is read afresh) but its vector index, loaded earlier, lacks the vector, and Chroma raises
        an internal error (chroma#3792). An id Chroma lacks altogether is not that (doctor's case)."""
        from chromadb.errors import InternalError

        with self._errors("read a vector"):
            try:
                self._collection.get(ids=[chunk_id], include=["embeddings"])
            except InternalError:
                return True
        return False

    def count(self) -> int:
        with self._errors("count chunks"):
            return self._collection.count()

    def ids(self) -> set[str]:
        """Every id stored (for tests and consistency checks)."""
        with self._errors("list chunks"):
            return set(self._collection.get(include=[])["ids"])

    def distances(self, vector: Sequence[float], ids: Sequence[str]) -> list[tuple[str, float]]:
        """(id, exact cosine distance to vector) from the stored embeddings; ids Chroma lacks are left out."""
        return self.vectors(ids).distances(vector)

    def vectors(self, ids: Sequence[str]) -> StoredVectors:
        """The stored embeddings of ids; those Chroma lacks are left out."""
        if not ids:
            return StoredVectors([], [])
        with self._errors("read vectors"):
            got = self._collection.get(ids=list(ids), include=["embeddings"])
        return StoredVectors(list(got["ids"]), got["embeddings"] if got["ids"] else [])

    def query(
        self, vector: Sequence[float], n: int, where: dict[str, Any] | None = None, ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(id, distance) of the n nearest vectors, within where and ids; texts come from the ledger,
        since asking Chroma for documents and metadata costs far more than the search itself."""
        query: list[Sequence[float]] = [list(vector)]
        with self._errors("search"):
            found = self._collection.query(
                query_embeddings=query,
                n_results=n,
                where=where or None,
                ids=list(ids) if ids is not None else None,
                include=["distances"],
            )
        distances = (found.get("distances") or [[]])[0] or []
        return [(id_, float(d)) for id_, d in zip(found["ids"][0], distances, strict=True)]


@dataclass(frozen=True, slots=True)
class StoredVectors:
    """Embeddings read back from Chroma, by id."""

    ids: list[str]
    embeddings: Any  # rows of floats: a numpy array as Chroma returns them, or a list

    def distances(self, vector: Sequence[float]) -> list[tuple[str, float]]:
        """(id, exact cosine distance to vector) of each stored embedding."""
        import numpy as np

        if not self.ids:
            return []
        query = np.asarray(vector, dtype=np.float64)
        query /= np.linalg.norm(query) or 1.0
        stored = np.asarray(self.embeddings, dtype=np.float64)
        norms = np.linalg.norm(stored, axis=1)
        cosines = stored @ query / np.where(norms == 0, 1.0, norms)
        return [(id_, 1.0 - float(c)) for id_, c in zip(self.ids, cosines, strict=True)]

    def only(self, ids: set[str]) -> StoredVectors:
        """The embeddings of those of ids held here."""
        keep = [i for i, id_ in enumerate(self.ids) if id_ in ids]
        return StoredVectors([self.ids[i] for i in keep], [self.embeddings[i] for i in keep])


class ChromaStore:
    """A Chroma client and the collections in it."""

    def __init__(self, client: ClientAPI, where: str, path: Path | None = None):
        self._client = client
        self.where = where
        self.path = path  # the embedded store's directory; None for a server
        self._errors = _Errors(where)

    @classmethod
    def open(cls, data_dir: Path, server: ChromaServer | None) -> ChromaStore:
        """Connect to the embedded store in data_dir, or to the server."""
        import chromadb
        from chromadb.config import Settings

        # _env_file=None: chromadb's Settings would otherwise read a .env in the cwd.
        settings = Settings(anonymized_telemetry=False, _env_file=None)
        if server:
            return cls(_http_client(server, settings), server.describe())
        path, where = data_dir / "chroma", describe_store(data_dir, None)
        try:
            path.mkdir(parents=True, exist_ok=True)
            return cls(chromadb.PersistentClient(path=str(path), settings=settings), where, path)
        except Exception as exc:  # chromadb raises bare errors for an unreadable or read-only store
            raise StoreError(
                f"Cannot open {where}: {exc}. Set SESSION_SEARCH_DATA_DIR to a folder you can write, "
                "or run `session-search doctor`."
            ) from None

    def _names(self) -> set[str]:
        with self._errors("list collections"):
            return {c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()}

    def get(self, name: str) -> VectorCollection | None:
        """The collection called name, or None if it does not exist."""
        if name not in self._names():
            return None
        with self._errors("open the collection"):
            return VectorCollection(self._client.get_collection(name, embedding_function=None), self._errors)

    def create(self, name: str, identity: IndexIdentity) -> VectorCollection:
        with self._errors("create a collection"):
            collection = self._client.get_or_create_collection(
                name, configuration={"hnsw": HNSW}, metadata={"ss_identity": identity.to_json()}, embedding_function=None
            )
        return VectorCollection(collection, self._errors)

    def drop(self, name: str) -> None:
        if name in self._names():
            with self._errors("delete a collection"):
                self._client.delete_collection(name)


def _http_client(server: ChromaServer, settings: Any) -> ClientAPI:
    """A client of the server (TLS for an https URL), checked with one request: refused
    credentials and an unreachable server are told apart, and no header value is ever shown."""
    import chromadb
    from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT

    parts = urlsplit(server.url)
    where = server.describe()
    try:
        return chromadb.HttpClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            headers=dict(server.headers),
            settings=settings,
            tenant=server.tenant or DEFAULT_TENANT,
            database=server.database or DEFAULT_DATABASE,
        )
    except Exception as exc:  # chromadb raises bare ValueError/Exception on a failed handshake
        raise StoreError(_refusal(where, server, exc)) from None


def _refusal(where: str, server: ChromaServer, exc: Exception) -> str:
    """One line for a failed first request to the server; secrets in chromadb's text are masked."""
    text = str(exc)
    for value in server.headers.values():
        text = text.replace(value, "***") if value else text
    lowered = text.lower()
    if any(word in lowered for word in ("401", "403", "unauthorized", "forbidden", "authenticat", "permission")):
        sent = ", ".join(sorted(server.headers)) or "no headers"
        return f"{where} refused the credentials ({sent} sent): {text}. Check the key in SESSION_SEARCH_CHROMA_HEADERS."
    if (server.tenant or server.database) and ("tenant" in lowered or "database" in lowered):
        return f"{where}: {text}. Check SESSION_SEARCH_CHROMA_TENANT and SESSION_SEARCH_CHROMA_DATABASE."
    return f"Cannot reach {where}: {text}. Start it with `chroma run --path DIR`, or unset SESSION_SEARCH_CHROMA_URL."


def forget_open_clients() -> None:
    """Drop chromadb's per-path client cache, so the next open sees other processes' writes (chroma#3792)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
