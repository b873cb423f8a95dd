"""Search shaping and filters, and read_session, over the indexed real transcripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings
from support.calls import read, reindex, run_search
from support.env import settings_for
from support.home import claude_home
from support.ledger_reads import exchange_of, served_name
from support.ollama_standin import OllamaStandIn

from indexer import retrieve
from indexer.chunk import count_tokens
from indexer.config import Settings
from indexer.errors import InvalidArgument
from indexer.store import VectorCollection

BIG_SESSION = "258c7280-ae70-4798-800f-63464d01a85d"  # the largest fixture: 2.7 MB, 1,863 lines
SUBAGENT_PARENT = "ef958aa1-0e93-49f0-bb71-150f63befcd1"


def _overlap(a, b) -> bool:
    return a.source_path == b.source_path and a.line_start <= b.line_end and b.line_start <= a.line_end


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
@pytest.mark.parametrize(
    "query",
    [
        "run the tests and fix the failing ones",
        # Long exchanges, some of whose windows match and some do not:
        "where did we store the one-time tokens for launching the review conversation?",
        "set up linting, type checking and dependency security audits for the Elixir app",
    ],
)
async def test_one_result_per_exchange_best_first(fixture_index: Settings, mode: str, query: str) -> None:
    response = await run_search(fixture_index, query=query, top_k=20, mode=mode)
    hits = response.results
    assert len(hits) >= 5 and response.mode == mode
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert not any(_overlap(a, b) for i, a in enumerate(hits) for b in hits[i + 1 :])
    exchanges = exchange_of(fixture_index.data_dir, [h.chunk_id for h in hits])
    assert len(set(exchanges)) == len(exchanges)  # windows of one long exchange that do not overlap, too


async def test_paging_continues_without_repeats(fixture_index: Settings) -> None:
    first = await run_search(fixture_index, query="error when running the server", top_k=5)
    second = await run_search(fixture_index, query="error when running the server", top_k=5, offset=first.next_offset)
    assert first.next_offset == 5
    assert not {h.chunk_id for h in first.results} & {h.chunk_id for h in second.results}


async def test_exact_strings_are_found_by_keywords(fixture_index: Settings) -> None:
    response = await run_search(fixture_index, query="mix phx.server", mode="keyword")
    assert response.results[0].session_id == "55604662-cf2a-4331-851a-ec234028f8ca"
    assert "phx.server" in response.results[0].snippet


@pytest.mark.parametrize("filters", [{}, {"since": "2001-01-01"}], ids=["unfiltered", "filter-keeping-all"])
async def test_a_keyword_hit_the_approximate_vector_search_missed_is_scored_exactly(
    fixture_index: Settings, monkeypatch: pytest.MonkeyPatch, filters: dict[str, str]
) -> None:
    """HNSW search is approximate: a chunk the keywords found first that it did not return still
    gets its vector's exact score, so hybrid ranks it on both and it keeps the lead. (Unfiltered,
    its vector is read beside the search; with a filter, after it.)"""
    query = "mix phx.server"
    best = (await run_search(fixture_index, query=query, mode="keyword", top_k=1, **filters)).results[0].chunk_id
    both = await run_search(fixture_index, query=query, mode="hybrid", top_k=5, **filters)
    real_query = VectorCollection.query

    def missing_best(self: VectorCollection, vector: Sequence[float], n: int, **filters: Any) -> list[tuple[str, float]]:
        return [pair for pair in real_query(self, vector, n, **filters) if pair[0] != best]

    monkeypatch.setattr(VectorCollection, "query", missing_best)
    missed = await run_search(fixture_index, query=query, mode="hybrid", top_k=5, **filters)
    hit = next(h for h in missed.results if h.chunk_id == best)
    assert hit.match == "both"
    assert [(h.chunk_id, h.score) for h in missed.results][:1] == [(h.chunk_id, h.score) for h in both.results][:1]


async def test_the_snippet_is_centred_on_what_matched(fixture_index: Settings) -> None:
    response = await run_search(fixture_index, query="ecto", mode="keyword", top_k=5)
    assert len(response.results) == 5
    for hit in response.results:
        assert len(hit.snippet) <= 702  # 700 characters and the ellipses
        assert "ecto" in hit.snippet.lower()


@pytest.mark.parametrize(
    ("filters", "holds"),
    [
        ({"project": "spotter"}, lambda h: "spotter" in h.project),
        ({"session_id": SUBAGENT_PARENT}, lambda h: h.session_id == SUBAGENT_PARENT),
        ({"git_branch": "master"}, lambda h: h.git_branch == "master"),
        ({"since": "2026-02-01"}, lambda h: h.timestamp >= "2026-02-01"),
        ({"until": "2025-10-01"}, lambda h: h.timestamp <= "2025-10-01T23:59:59.999Z"),
        ({"kind": "compaction_summary"}, lambda h: h.kind == "compaction_summary"),
        ({"tool": "Bash"}, lambda h: "Bash" in h.tools),
        ({"include_subagents": False}, lambda h: h.agent_id == ""),
    ],
)
@pytest.mark.parametrize("mode", ["keyword", "vector"])
async def test_each_filter_excludes_what_it_should(fixture_index: Settings, filters: dict, holds, mode: str) -> None:
    everything = await run_search(fixture_index, query="what did we change in the code and why", top_k=50, mode=mode)
    assert not all(holds(h) for h in everything.results), "the unfiltered search must include something the filter removes"
    filtered = await run_search(fixture_index, query="what did we change in the code and why", top_k=50, mode=mode, **filters)
    assert filtered.results
    assert all(holds(h) for h in filtered.results)


async def test_relative_dates_are_understood(fixture_index: Settings) -> None:
    recent = await run_search(fixture_index, query="server", since="7d")
    old = await run_search(fixture_index, query="server", since="100y")
    assert recent.results == [] and recent.note
    assert old.results


async def test_answers_stay_under_the_token_budget_on_the_largest_session(fixture_index: Settings) -> None:
    response = await run_search(fixture_index, query="hook progress agent task", top_k=50, session_id=BIG_SESSION)
    assert count_tokens(response.model_dump_json()) <= fixture_index.result_tokens * 1.2
    assert response.next_offset is not None and "fit the size budget" in response.note
    page = await read(fixture_index, session_id=BIG_SESSION, limit=100)
    assert count_tokens(page.model_dump_json()) <= fixture_index.result_tokens * 1.3
    assert page.next_offset == len(page.messages)


async def test_read_session_around_a_hit_shows_it_in_order(fixture_index: Settings) -> None:
    hit = (await run_search(fixture_index, query="mix phx.server doesnt seem to start")).results[0]
    page = await read(fixture_index, session_id=hit.session_id, around=hit.chunk_id, limit=10)
    assert any("mix phx.server doesnt seem to start" in m.text for m in page.messages)
    assert [m.index for m in page.messages] == list(range(page.messages[0].index, page.messages[0].index + len(page.messages)))
    assert {m.role for m in page.messages} >= {"user", "assistant"}
    assert page.project == "/home/marco/projects/spotter" and page.resume_command.endswith(hit.session_id)


async def test_read_session_pages_through_a_subagent(fixture_index: Settings) -> None:
    page = await read(fixture_index, session_id=SUBAGENT_PARENT, agent_id="a4ca7529859c158c2", limit=5)
    assert page.agent_id == "a4ca7529859c158c2" and page.total_messages > 5
    following = await read(
        fixture_index, session_id=SUBAGENT_PARENT, agent_id="a4ca7529859c158c2", offset=page.next_offset, limit=5
    )
    assert following.messages[0].index == 5 and following.previous_offset == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"session_id": "no-such-session"}, "No indexed session"),
        ({"session_id": "../../../etc/passwd"}, "No indexed session"),
        ({"session_id": SUBAGENT_PARENT, "agent_id": "nobody"}, "no subagent transcript"),
        ({"session_id": SUBAGENT_PARENT, "around": "not-a-message"}, "has no message"),
    ],
)
async def test_read_session_refuses_what_it_cannot_show(fixture_index: Settings, fields: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await read(fixture_index, **fields)


async def test_a_deleted_transcript_is_read_from_the_index(ollama: OllamaStandIn, tmp_path: Path) -> None:
    home = claude_home(tmp_path / "claude", "-home-marco-projects-spotter")
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    next((home / "projects").rglob("55604662-*.jsonl")).unlink()
    page = await read(settings, session_id="55604662-cf2a-4331-851a-ec234028f8ca")
    assert "deleted" in page.note
    assert page.messages and page.messages[0].role == "excerpt"
    assert "mix phx.server" in page.messages[0].text
    assert json.loads(page.model_dump_json())["total_messages"] == len(page.messages)


FILTERED = {"project": "spotter", "since": "2025-06-01"}


@pytest.mark.parametrize(
    ("path", "exact_subset", "oversample_share"),
    [("ids given to Chroma", 0, 2.0), ("a wider search post-filtered", 0, 0.0)],
)
async def test_a_filtered_vector_search_finds_the_exact_nearest_whichever_way_it_runs(
    fixture_index: Settings, monkeypatch: pytest.MonkeyPatch, path: str, exact_subset: int, oversample_share: float
) -> None:
    query = {"query": "start the phoenix server and fix the failing test", "mode": "vector", "top_k": 5, **FILTERED}
    monkeypatch.setattr(retrieve, "EXACT_SUBSET", 10**9)  # every chunk the filter keeps, scored exactly
    exact = await run_search(fixture_index, **query)
    monkeypatch.setattr(retrieve, "EXACT_SUBSET", exact_subset)
    monkeypatch.setattr(retrieve, "OVERSAMPLE_SHARE", oversample_share)
    found = await run_search(fixture_index, **query)
    assert len(exact.results) == 5 and all("spotter" in h.project for h in found.results)
    assert [h.chunk_id for h in found.results][:3] == [h.chunk_id for h in exact.results][:3], path
    assert len({h.chunk_id for h in found.results} & {h.chunk_id for h in exact.results}) >= 4, path


async def test_a_filtered_search_survives_a_vector_missing_from_chroma(
    tmp_path: Path, ollama: OllamaStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's newest chunks are in the ledger before this process's Chroma client sees them."""
    home = claude_home(tmp_path / "claude", all_projects=True)
    settings = settings_for(ollama.url, home, tmp_path / "data")
    await reindex(settings)
    before = await run_search(settings, query="phoenix server", mode="vector", **FILTERED)
    missing = before.results[0].chunk_id
    client = chromadb.PersistentClient(str(settings.data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    active = served_name(settings.data_dir)
    client.get_collection(active).delete(ids=[missing])
    SharedSystemClient.clear_system_cache()
    monkeypatch.setattr(retrieve, "EXACT_SUBSET", 0)
    monkeypatch.setattr(retrieve, "OVERSAMPLE_SHARE", 2.0)  # the ids path, which Chroma refuses

    after = await run_search(settings, query="phoenix server", mode="vector", **FILTERED)
    assert after.results and all("spotter" in h.project for h in after.results)
    assert missing not in {h.chunk_id for h in after.results}
    assert [h.chunk_id for h in after.results][:3] == [h.chunk_id for h in before.results][1:4]
