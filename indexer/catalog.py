"""The catalog: which collection is served and which is being built, and the switch.

Which collection is served is recorded in the ledger (`active`). A reindex whose settings
give another index identity (model, dimensions, chunker, document template) builds a new
collection beside it (`building`), resumable after a crash, and switches `active` in one
transaction when the build is complete; until then searches keep using the old one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import anyio

from indexer.agents import discover_sources
from indexer.errors import IndexEmpty, StoreError
from indexer.ledger import CollectionRecord, Ledger
from indexer.resources import Resources
from indexer.store import ChromaStore, IndexIdentity, VectorCollection, describe_store, forget_open_clients

log = logging.getLogger(__name__)
NOT_INDEXED = "Nothing is indexed yet. Run `session-search reindex` (or the reindex tool) first."


@dataclass(slots=True)
class Served:
    """The collection searches use, as of one ledger generation."""

    generation: str | None
    record: CollectionRecord
    identity: IndexIdentity
    collection: VectorCollection
    vectors_checked: bool = False  # Catalog.with_fresh_vectors
    chunks: int | None = None  # these three are read once per generation
    projects: list[str] | None = None
    filter_values: dict[str, set[str]] | None = None

    def count(self) -> int:
        if self.chunks is None:
            self.chunks = self.collection.count()
        return self.chunks


class Catalog:
    """The served and the building collection of one data dir, and the store that holds them."""

    def __init__(self, resources: Resources):
        self.resources = resources
        self._store: ChromaStore | None = None
        self._store_generation: str | None = None
        self._served: Served | None = None
        self._changed: tuple[float, int] | None = None

    @property
    def ledger(self) -> Ledger:
        return self.resources.ledger

    def _where(self) -> str:
        return describe_store(self.resources.settings.data_dir, self.resources.settings.chroma_server)

    def store(self) -> ChromaStore:
        """The store, reopened when another process has written since we opened it (chroma#3792)."""
        generation = self.ledger.generation
        if self._store is None or generation != self._store_generation:
            store = self._open_store()
            self._store_generation, self._served = generation, None
            return store
        return self._store

    def _open_store(self) -> ChromaStore:
        """A new client; one opened before is forgotten first, so the new one reads the files afresh."""
        if self._store is not None:
            forget_open_clients()
        self._store = ChromaStore.open(self.resources.settings.data_dir, self.resources.settings.chroma_server)
        return self._store

    def serving(self) -> Served:
        """The served collection, its identity, and the query template that goes with it."""
        store = self.store()
        generation = self._store_generation
        if self._served is not None and self._served.generation == generation:
            return self._served
        record = self.ledger.collection(self.ledger.active)
        identity = IndexIdentity.from_json(record.identity) if record else None
        collection = store.get(record.name) if record else None
        if record is not None and identity is not None and collection is None:
            raise IndexEmpty(self.missing_message(record.name))
        if record is None or identity is None or collection is None:
            raise IndexEmpty(self.empty_message())
        self._served = Served(generation, record, identity, collection)
        return self._served

    async def with_fresh_vectors(self, served: Served) -> Served:
        """served, once its client is known to hold the vector of the chunk the ledger recorded
        last; else the collection from a new client. Once per generation, before a vector search:
        the check reads a vector, which loads the HNSW index, so it runs in a worker thread."""
        if served.vectors_checked:
            return served
        newest = self.ledger.newest_doc(served.record.name)
        if newest is not None and await anyio.to_thread.run_sync(served.collection.missed_writes, newest):
            log.warning(
                "Chroma's client here missed writes to %s by another process; opening the store again", served.record.name
            )
            collection = self._open_store().get(served.record.name)
            if collection is None or await anyio.to_thread.run_sync(collection.missed_writes, newest):
                raise StoreError(
                    f"Chroma's vector index in {self._where()} lacks vectors the ledger recorded (chunk {newest}), "
                    "even opened afresh. Run `session-search reindex --full` to build the index again."
                )
            served = self._served = Served(served.generation, served.record, served.identity, collection)
        served.vectors_checked = True
        return served

    def empty_message(self) -> str:
        building = self.ledger.building
        if building:
            done = self.ledger.source_count(building)
            return f"The first index is being built ({done} files so far); search again when `reindex` finishes."
        return NOT_INDEXED

    def store_moved(self) -> bool:
        """The index was last written to another store than the one configured (SESSION_SEARCH_CHROMA_URL changed)."""
        recorded = self.ledger.written_to
        return recorded is not None and recorded != self._where()

    def missing_message(self, name: str) -> str:
        where = self._where()
        if self.store_moved():
            return (
                f"The index was built in {self.ledger.written_to}, but {where} is configured now "
                "(SESSION_SEARCH_CHROMA_URL). Run `session-search reindex` to build it there, or set the old value back."
            )
        return (
            f"The served index {name} is missing from {where}: its vectors were deleted or damaged. "
            "Run `session-search doctor --repair` to rebuild them from the texts the ledger keeps."
        )

    def serves(self, identity: IndexIdentity) -> CollectionRecord | None:
        """The served collection's record, if it has this identity."""
        active = self.ledger.collection(self.ledger.active)
        return active if active is not None and IndexIdentity.from_json(active.identity) == identity else None

    def target(self, store: ChromaStore, identity: IndexIdentity, full: bool) -> tuple[VectorCollection, bool]:
        """The collection to write: the served one if its identity matches, else one being built."""
        active = self.serves(identity)
        if active and not full:
            found = store.get(active.name)
            if found is not None:
                return found, False
        building = self.ledger.collection(self.ledger.building)
        if building and not full and IndexIdentity.from_json(building.identity) == identity:
            return store.create(building.name, identity), True
        if building:
            self.drop(store, building.name)
        name = identity.new_collection_name()
        self.ledger.add_collection(CollectionRecord(name, identity.to_json(), self.resources.template.format_query("{query}")))
        self.ledger.building = name
        return store.create(name, identity), True

    def drop(self, store: ChromaStore, name: str) -> None:
        store.drop(name)
        self.ledger.drop_collection(name)

    def drop_orphans(self, store: ChromaStore) -> None:
        """Collections neither served nor being built: left by a crash right after a switch."""
        keep = {self.ledger.active, self.ledger.building}
        for name in self.ledger.collection_names() - keep:
            self.drop(store, name)

    def switch(self, store: ChromaStore, name: str) -> None:
        old = self.ledger.active
        self.ledger.switch_active(name)
        if old and old != name:
            self.drop(store, old)

    def publish(self, *, written_here: bool = True) -> None:
        """Tell readers that the index changed; this process too, when a child process wrote it."""
        generation = self.ledger.publish(self._where())
        if written_here:
            self._store_generation = generation  # its own client already sees the writes
        self._served, self._changed = None, None

    def changed_files(self, max_age_s: float = 0.0) -> int:
        """Transcript files new or changed since the served index was last updated."""
        now = time.monotonic()
        if self._changed is not None and now - self._changed[0] < max_age_s:
            return self._changed[1]
        served = self.ledger.active
        folders = self.resources.settings.agent_folders
        count = sum(1 for s in discover_sources(folders) if not (served and self.ledger.is_current(served, s)))
        self._changed = (now, count)
        return count
