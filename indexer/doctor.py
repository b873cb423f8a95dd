"""`session-search doctor`: why does search not find X? One screen of facts, each problem with its fix.

It reports the transcript folders per agent, whether Ollama answers and has the model, the served
index and a migration in progress, whether the vectors, the ledger and the keyword index hold the
same chunk ids, and the data dir's size and mode. `repair` brings a disagreeing index back to a
clean build's state: missing vectors are embedded again from the texts the ledger keeps (so chunks
of transcripts Claude Code has deleted survive a broken vector store), stray ones are deleted, and
the keyword index is rebuilt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from pydantic import BaseModel, Field

from indexer.chunk import Chunk
from indexer.datadir import facts as data_dir_facts
from indexer.errors import SessionSearchError, StoreError
from indexer.folders import transcript_folders
from indexer.lock import WriterLock
from indexer.store import IndexIdentity, VectorCollection

if TYPE_CHECKING:
    from indexer.service import SessionSearch

EXAMPLES = 3
REEMBED_BATCH = 256


class FolderFacts(BaseModel):
    agent: str
    folder: str
    transcripts: int
    problem: str | None = None


class Agreement(BaseModel):
    """Chunk ids of the served index in each of its three stores."""

    vectors: int | None = Field(description="Ids in Chroma; None when the collection cannot be read.")
    ledger: int
    keywords: int
    missing_vectors: list[str] = Field([], description=f"Up to {EXAMPLES} ids in the ledger without a vector.")
    missing_vectors_count: int = 0
    stray_vectors_count: int = Field(0, description="Vectors the ledger does not know.")
    keyword_mismatch_count: int = Field(0, description="Ids in the ledger or the keyword index but not both.")
    vector_search_error: str | None = None


class DoctorReport(BaseModel):
    folders: list[FolderFacts]
    ollama_host: str
    ollama_answers: bool
    ollama_version: str | None
    model: str
    model_pulled: bool | None
    dimensions: int | None
    ollama_error: str | None
    store: str
    served_index: str | None
    index_model: str | None
    index_dimensions: int | None
    chunks: int
    sessions: int
    migration: str | None
    agreement: Agreement | None
    data_dir: str
    data_dir_exists: bool
    data_dir_mode: str | None
    data_dir_bytes: int
    data_dir_loose_files: int = Field(description="Files or folders others can read or write (should be 0).")
    problems: list[str] = Field([], description="What is wrong, each with what to do.")
    repaired: list[str] = Field([], description="What --repair did.")

    @property
    def healthy(self) -> bool:
        return not self.problems


def _served(index: SessionSearch) -> tuple[str, IndexIdentity] | None:
    record = index.ledger.collection(index.ledger.active)
    identity = IndexIdentity.from_json(record.identity) if record else None
    return (record.name, identity) if record and identity else None


def _collection(index: SessionSearch, name: str) -> VectorCollection | None:
    return index.catalog.store().get(name)  # the service's store, reopened when another writer wrote


def _agreement(index: SessionSearch, name: str) -> Agreement:
    recorded, keyword = index.ledger.ids(name)
    collection = _collection(index, name)
    vectors: set[str] | None = None
    search_error = None
    if collection is not None:
        vectors = collection.ids()
        try:
            if vectors:  # a real nearest-neighbour search: a broken HNSW index fails it
                collection.query(_stored_vector(collection, vectors), 1)
        except StoreError as exc:
            search_error = str(exc)
    missing = sorted(recorded - (vectors or set()))
    return Agreement(
        vectors=None if vectors is None else len(vectors),
        ledger=len(recorded),
        keywords=len(keyword),
        missing_vectors=missing[:EXAMPLES],
        missing_vectors_count=len(missing),
        stray_vectors_count=len((vectors or set()) - recorded),
        keyword_mismatch_count=len(recorded ^ keyword),
        vector_search_error=search_error,
    )


def _stored_vector(collection: VectorCollection, vectors: set[str]) -> list[float]:
    """One stored vector, to search with."""
    with collection._errors("read a vector"):
        got = collection._collection.get(ids=[next(iter(vectors))], include=["embeddings"])
    embeddings = got["embeddings"]
    if embeddings is None or len(embeddings) == 0:
        raise StoreError("Chroma returned no vector for a stored id")
    return [float(x) for x in embeddings[0]]


def _problems(report: DoctorReport) -> list[str]:
    problems = [f"{f.agent}: {f.problem}" for f in report.folders if f.problem]
    if report.ollama_error:
        problems.append(report.ollama_error)
    if report.served_index is None:
        problems.append("Nothing is indexed yet: run `session-search reindex`.")
    agreement = report.agreement
    if agreement is not None:
        if agreement.vectors is None:
            problems.append(
                f"The served index {report.served_index} is missing from {report.store} (its files were deleted or damaged, "
                "or SESSION_SEARCH_CHROMA_URL changed): `session-search doctor --repair` rebuilds it from the ledger's texts."
            )
        elif agreement.missing_vectors_count or agreement.stray_vectors_count:
            problems.append(
                f"The vectors and the ledger disagree: {agreement.missing_vectors_count} chunks have no vector "
                f"(e.g. {', '.join(agreement.missing_vectors) or '-'}), {agreement.stray_vectors_count} vectors have no chunk. "
                "Search misses those chunks: run `session-search doctor --repair`."
            )
        if agreement.keyword_mismatch_count:
            problems.append(
                f"The ledger and the keyword index disagree on {agreement.keyword_mismatch_count} chunks: run `session-search doctor --repair`."
            )
        if agreement.vector_search_error:
            problems.append(f"Vector search fails ({agreement.vector_search_error}): run `session-search doctor --repair`.")
    if report.data_dir_loose_files:
        problems.append(
            f"{report.data_dir_loose_files} files or folders in {report.data_dir} are open to other users; "
            "any session-search command tightens them (0700 folders, 0600 files)."
        )
    return problems


async def examine(index: SessionSearch) -> DoctorReport:
    """Every fact doctor shows; nothing is written (except what opening the ledger always does)."""
    settings = index.settings
    folders = [
        FolderFacts(agent=f.agent, folder=str(f.folder), transcripts=f.transcripts, problem=f.problem)
        for f in transcript_folders(settings)
    ]
    before = data_dir_facts(settings.data_dir)
    info = served = agreement = None
    unusable = None
    if settings.data_dir.exists() and not before.exists:
        unusable = f"The data dir {settings.data_dir} is not a folder: set SESSION_SEARCH_DATA_DIR to a folder you can write."
    elif before.exists:
        try:
            info = await index.info()
            served = _served(index)
        except SessionSearchError as exc:
            unusable = str(exc)
    if served is not None:
        try:
            agreement = _agreement(index, served[0])
        except SessionSearchError as exc:
            agreement = Agreement(vectors=None, ledger=0, keywords=0, vector_search_error=str(exc))
    dd = data_dir_facts(settings.data_dir)
    report = DoctorReport(
        folders=folders,
        ollama_host=settings.ollama_host if settings.embed_backend == "ollama" else str(settings.openai_base_url),
        ollama_answers=bool(info and info.ollama_version),
        ollama_version=info.ollama_version if info else None,
        model=settings.model,
        model_pulled=info.model_pulled if info else None,
        dimensions=info.dimensions if info else None,
        ollama_error=info.ollama_error if info else None,
        store=info.store if info else "",
        served_index=served[0] if served else None,
        index_model=info.index_model if info else None,
        index_dimensions=info.index_dimensions if info else None,
        chunks=info.chunks if info else 0,
        sessions=info.sessions if info else 0,
        migration=info.migration if info else None,
        agreement=agreement,
        data_dir=str(dd.path),
        data_dir_exists=dd.exists,
        data_dir_mode=dd.mode,
        data_dir_bytes=dd.size_bytes,
        data_dir_loose_files=dd.loose_files,
    )
    report.problems = ([unusable] if unusable else []) + _problems(report)
    if unusable:
        report.problems = [p for p in report.problems if not p.startswith("Nothing is indexed yet")]
    return report


async def repair(index: SessionSearch) -> DoctorReport:
    """Bring the served index back to a clean build's ids, re-embedding from the ledger's texts."""
    done: list[str] = []
    with WriterLock(index.settings.data_dir):
        served = _served(index)
        if served is not None:
            done = await _repair(index, *served)
    report = await examine(index)
    report.repaired = done or ["Nothing needed repair."]
    return report


async def _repair(index: SessionSearch, name: str, identity: IndexIdentity) -> list[str]:
    ledger, done = index.ledger, []
    store = index.catalog.store()
    collection = store.get(name)
    agreement = _agreement(index, name) if collection is not None else None
    if collection is not None and agreement and agreement.vector_search_error:
        store.drop(name)  # a damaged HNSW index: start the collection again from the ledger
        collection, done = None, [f"dropped the damaged collection {name}"]
    if collection is None:
        collection = store.create(name, identity)
        done.append(f"created the collection {name} again in {store.where}")
    recorded, keyword = ledger.ids(name)
    vectors = await anyio.to_thread.run_sync(collection.ids)
    stray = sorted(vectors - recorded)
    if stray:
        await anyio.to_thread.run_sync(collection.delete, stray)
        done.append(f"deleted {len(stray)} vectors the ledger does not know")
    orphan_docs = sorted(keyword - recorded)
    if orphan_docs:
        ledger.drop_docs(name, orphan_docs)
        done.append(f"removed {len(orphan_docs)} keyword rows no chunk owns")
    missing = sorted(recorded - vectors)
    texts = ledger.docs_for(name, missing)
    untexted = [i for i in missing if i not in texts]
    if untexted:  # no text kept: parse their transcripts again on the next reindex
        for rel_path in ledger.sources_of(name, untexted):
            ledger.forget(name, rel_path, [])
        done.append(f"{len(untexted)} chunks had no text in the ledger; their transcripts are indexed again by the next reindex")
    embedded = await _reembed(index, identity, collection, [texts[i].chunk() for i in missing if i in texts])
    if embedded:
        done.append(f"embedded {embedded} chunks again from the texts the ledger keeps")
    ledger.rebuild_keywords()
    done.append("rebuilt the keyword index")
    index.catalog.publish()  # other servers reopen and see the repaired vectors
    return done


async def _reembed(index: SessionSearch, identity: IndexIdentity, collection: VectorCollection, chunks: list[Chunk]) -> int:
    embedder = index.resources.embedder_for(identity.backend, identity.model, identity.dimensions)
    stored = 0
    for start in range(0, len(chunks), REEMBED_BATCH):
        batch = chunks[start : start + REEMBED_BATCH]
        vectors = await embedder.embed([index.template.format_document(c.text) for c in batch])
        kept = [(c, v) for c, v in zip(batch, vectors, strict=True) if v is not None]
        await anyio.to_thread.run_sync(collection.upsert, [c for c, _ in kept], [v for _, v in kept])
        stored += len(kept)
    return stored


def render_doctor(report: DoctorReport) -> str:
    """One screen: facts, then problems (each with its fix), then what was repaired."""
    lines = ["Transcripts:"]
    lines += [f"  {f.agent}: {f.folder}: {f.problem or f'{f.transcripts} transcripts'}" for f in report.folders]
    pulled = {True: "pulled", False: "NOT pulled", None: "unknown"}[report.model_pulled]
    answers = f"answers (version {report.ollama_version})" if report.ollama_answers else "does NOT answer"
    lines += [
        f"Embedder: {report.ollama_host} {answers}; model {report.model} {pulled}"
        + (f", {report.dimensions} dimensions" if report.dimensions else ""),
        f"Index: {report.served_index or 'none'} in {report.store or '-'}"
        + (
            f": {report.chunks} chunks, {report.sessions} sessions, {report.index_model} at {report.index_dimensions} dimensions"
            if report.served_index
            else ""
        ),
    ]
    if report.migration:
        lines.append(f"Migration: {report.migration}")
    if report.agreement is not None:
        a = report.agreement
        lines.append(
            f"Agreement: vectors {a.vectors if a.vectors is not None else 'missing'}, ledger {a.ledger}, keyword index {a.keywords}"
        )
    mode = report.data_dir_mode or "-"
    size = f"{report.data_dir_bytes / 1e6:.1f} MB" if report.data_dir_exists else "not created yet"
    lines.append(f"Data dir: {report.data_dir} ({size}, mode {mode})")
    lines += ["Problems:"] + [f"  - {p}" for p in report.problems] if report.problems else ["No problems found."]
    if report.repaired:
        lines += ["Repaired:"] + [f"  - {r}" for r in report.repaired]
    return "\n".join(lines)
