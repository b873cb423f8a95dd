"""Status: what `info` (and through it `doctor`) reports about the model, the templates and
the index. Service failures are reported, not raised."""

from __future__ import annotations

import os
from typing import Any

import anyio

from indexer.agents import discover_sources
from indexer.catalog import Catalog
from indexer.datadir import describe_data_dir
from indexer.embed import ModelFacts
from indexer.errors import EmbedderError, ModelNotPulled, SessionSearchError
from indexer.folders import transcript_folders
from indexer.models import ModelInfo
from indexer.resources import Resources
from indexer.store import IndexIdentity, describe_store


async def info(resources: Resources, catalog: Catalog) -> ModelInfo:
    """The model, templates and index state."""
    s, t, embedder = resources.settings, resources.template, resources.embedder
    facts = version = ollama_error = None
    failure: EmbedderError | None = None
    try:
        with anyio.fail_after(s.query_timeout_s):  # info answers within seconds, whatever Ollama does
            version = await embedder.version()
            facts = await embedder.facts()
    except TimeoutError:
        ollama_error = str(embedder.too_slow("answer", s.query_timeout_s))
    except EmbedderError as exc:
        ollama_error, failure = str(exc), exc
    state = await _index_state(resources, catalog, facts)
    return ModelInfo(
        model=s.model,
        dimensions=facts.dimensions if facts else s.dimensions,
        native_dimensions=facts.native_dimensions if facts else None,
        context_length=facts.context_length if facts else None,
        model_pulled=True if facts else (False if isinstance(failure, ModelNotPulled) else None),
        ollama_host=s.ollama_host,
        ollama_version=version,
        ollama_error=ollama_error,
        template_family=t.family,
        template_source=t.source,
        query_template=t.format_query("{query}"),
        document_template=t.document,
        chunker=resources.spec.identity,
        store=describe_store(s.data_dir, s.chroma_server),
        last_indexed=resources.ledger.last_indexed,
        changed_files=catalog.changed_files(),
        folders=[f"{f.agent}: {f.folder} ({f.problem or f'{f.transcripts} transcripts'})" for f in transcript_folders(s)],
        data_dir=describe_data_dir(s.data_dir),
        agents={name: str(folder) for name, folder in s.agent_folders.items()},
        index_process=f"this process, pid {os.getpid()}",
        **state,
    )


async def _index_state(resources: Resources, catalog: Catalog, facts: ModelFacts | None) -> dict[str, Any]:
    """Chunks, sessions, the served identity, a migration in progress, or why none can be searched."""
    ledger = resources.ledger
    state: dict[str, Any] = {"chunks": 0, "sessions": 0}
    building = ledger.collection(ledger.building)
    if building:
        target = IndexIdentity.from_json(building.identity)
        total = sum(1 for _ in discover_sources(resources.settings.agent_folders))
        what = f"{target.model} at {target.dimensions} dimensions" if target else building.name
        state["migration"] = f"building a new index ({what}): {ledger.source_count(building.name)} of {total} files"
    try:
        served = catalog.serving()
        state["chunks"] = await anyio.to_thread.run_sync(served.collection.count)
    except SessionSearchError as exc:
        state["index_error"] = str(exc)
        return state
    state["sessions"] = ledger.session_count(served.record.name)
    recorded, keyword = ledger.ids(served.record.name)
    agree = "agree" if state["chunks"] == len(recorded) == len(keyword) else "DISAGREE: run `session-search doctor`"
    state["agreement"] = f"vectors {state['chunks']}, ledger {len(recorded)}, keyword index {len(keyword)}: {agree}"
    state["index_model"], state["index_dimensions"] = served.identity.model, served.identity.dimensions
    if facts is not None and served.identity != resources.identity_for(facts) and not building:
        differences = ", ".join(resources.identity_for(facts).differences(served.identity))
        state["index_error"] = f"The served index was built with {differences}; the next reindex builds a new one beside it."
    return state
