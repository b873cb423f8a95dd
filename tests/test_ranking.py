"""Fusion, collapsing, snippets and the optional reranking stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.calls import reindex, run_search
from support.env import env_for, settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn
from support.paths import FIXTURE_HOME

from indexer.config import Settings
from indexer.search import (
    Candidate,
    StoredHit,
    collapse,
    fuse,
    keyword_scores,
    looks_exact,
    snippet,
    term_weights,
    vector_weight_for,
    with_session_evidence,
)

CLI = [sys.executable, "-c", "import sys; from indexer.cli import main; sys.exit(main(sys.argv[1:]))"]
GQC_ERROR = "The current branch spotter-gqc has no upstream branch"


def hit(id_: str, distance: float, path: str = "a.jsonl", lines: tuple[int, int] = (1, 2), **meta: object) -> StoredHit:
    return StoredHit(id_, f"text of {id_}", {"source_path": path, "line_start": lines[0], "line_end": lines[1], **meta}, distance)


# -- fusion --------------------------------------------------------------------------------------


def test_a_clear_keyword_winner_beats_a_crowd_of_similar_vectors() -> None:
    # Rank fusion would put "v1" (first in vectors, absent from keywords) level with "k1";
    # the keyword list says k1 matches far better than anything else, and the vectors barely differ.
    vector = [hit("v1", 0.50, lines=(1, 1)), hit("v2", 0.51, lines=(3, 3)), hit("k1", 0.52, lines=(5, 5))]
    keyword = [hit("k1", -12.0, lines=(5, 5)), hit("v2", -1.0, lines=(3, 3))]
    fused = fuse(vector, keyword, "why does it fail")
    assert [c.stored.id for c in fused][:1] == ["k1"]
    assert fused[0].match == "both" and fused[0].vector_rank == 3 and fused[0].keyword_rank == 1
    assert [c.score for c in fused] == sorted((c.score for c in fused), reverse=True)


async def test_a_question_in_words_finds_other_forms_of_its_words_and_a_string_only_as_written(
    ollama: OllamaStandIn, tmp_path: Path
) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(
        projects, "/w/app", "s-adopt", exchange("s-adopt", "/w/app", "we researched adoption agencies", "three of them")
    )
    write_session(projects, "/w/app", "s-deploy", exchange("s-deploy", "/w/app", "the script deploys nightly", "to staging"))
    write_session(projects, "/w/app", "s-once", exchange("s-once", "/w/app", "deploy it once by hand", "done"))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    found = await run_search(settings, query="who is researching adoptions?", mode="keyword")
    assert [h.session_id for h in found.results] == ["s-adopt"]  # no word of it is written so in the session
    as_written = await run_search(settings, query='"deploys"', mode="keyword")
    assert [h.session_id for h in as_written.results] == ["s-deploy"]  # not "deploy"
    in_words = await run_search(settings, query="which script deploys nightly?", mode="keyword")
    assert {h.session_id for h in in_words.results} == {"s-deploy", "s-once"}
    assert in_words.results[0].session_id == "s-deploy"  # the words as written count too


async def test_words_found_together_often_enough_as_written_are_not_stemmed(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    for n in range(10):  # as many chunks with every word as it takes not to widen the search
        write_session(projects, "/w/app", f"s-{n}", exchange(f"s-{n}", "/w/app", f"the script deploys nightly ({n})", "ok"))
    write_session(projects, "/w/app", "s-once", exchange("s-once", "/w/app", "deploy the script by hand", "done"))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    found = await run_search(settings, query="which script deploys nightly?", mode="keyword", top_k=20)
    assert len(found.results) == 10 and "s-once" not in {h.session_id for h in found.results}


def _same_vector_for_every_text(texts: list[str]) -> list[list[float]]:
    return [[1.0, 0.0, 0.0, 0.0] for _ in texts]


async def test_when_no_chunk_holds_every_word_hybrid_counts_the_words_each_holds(tmp_path: Path) -> None:
    """A chunk that repeats the question's rarest word leads BM25; one that holds most of the
    question's words must lead hybrid. No chunk holds them all ("run" is nowhere), so the keyword
    search widens to any word, and only then are the words each chunk holds counted. The vectors
    cannot tell the chunks apart, so the count decides."""
    projects = tmp_path / "claude" / "projects"
    question = "why did we run out of database connections when traffic went up"
    sqlite = "the database is locked: a second database connection held the database file"
    postgres = "traffic went up and the database ran out of connections at max_connections"
    write_session(projects, "/w/app", "s-sqlite", exchange("s-sqlite", "/w/app", "what is wrong here?", sqlite))
    write_session(projects, "/w/app", "s-postgres", exchange("s-postgres", "/w/app", "what is wrong here?", postgres))
    for n in range(8):  # "traffic", "went" and "connections" are common; "database" is rare
        write_session(
            projects, "/w/app", f"s-{n}", exchange(f"s-{n}", "/w/app", f"traffic went to the new connections page {n}", "ok")
        )
    with OllamaStandIn(real_models={"qwen3-embedding:4b": _same_vector_for_every_text}) as flat:
        settings = settings_for(flat.url, tmp_path / "claude", tmp_path / "data")
        await reindex(settings)
        keyword = await run_search(settings, query=question, mode="keyword")
        hybrid = await run_search(settings, query=question, mode="hybrid")
    assert [h.session_id for h in keyword.results][:2] == ["s-sqlite", "s-postgres"]
    assert [h.session_id for h in hybrid.results][:2] == ["s-postgres", "s-sqlite"]


@pytest.mark.parametrize("query", ["continue-on-error", "--continue-on-error"])
async def test_a_hyphenated_query_puts_the_chunk_holding_it_joined_before_those_holding_its_words_apart(
    tmp_path: Path, query: str
) -> None:
    """FTS5 reads `continue-on-error` (a flag too) as "continue" and "error" (and drops "on"), so
    every chunk below holds all its words and the keyword search does not widen; BM25 prefers the
    chunks that repeat a word of it, apart. The vectors cannot tell the chunks apart, so only counting
    the joined word can put the chunk that holds it first in hybrid."""
    projects = tmp_path / "claude" / "projects"
    joined = "I set continue-on-error: true on the lint step"
    write_session(projects, "/w/ci", "s-joined", exchange("s-joined", "/w/ci", "make lint failures non-fatal", joined))
    for n in range(10):
        apart = f"continue after the error, then continue {n}"
        write_session(projects, "/w/app", f"s-{n}", exchange(f"s-{n}", "/w/app", "what next?", apart))
    with OllamaStandIn(real_models={"qwen3-embedding:4b": _same_vector_for_every_text}) as flat:
        settings = settings_for(flat.url, tmp_path / "claude", tmp_path / "data")
        await reindex(settings)
        keyword = await run_search(settings, query=query, mode="keyword", top_k=20)
        hybrid = await run_search(settings, query=query, mode="hybrid", top_k=20)
    assert len(keyword.results) == 11 and keyword.results[0].session_id != "s-joined"
    assert hybrid.results[0].session_id == "s-joined"


async def test_a_chunk_holding_the_hyphenated_words_joined_is_a_candidate_however_many_hold_them_apart(
    tmp_path: Path,
) -> None:
    """More chunks hold "continue" and "error" apart than the keyword search takes, and BM25 ranks
    them all above the one holding `continue-on-error`: that one must still reach the candidates, so
    the count of joined words can put it first in hybrid. The vectors cannot tell the chunks apart."""
    projects = tmp_path / "claude" / "projects"
    joined = "I set continue-on-error: true on the lint step"
    write_session(projects, "/w/ci", "s-joined", exchange("s-joined", "/w/ci", "make lint failures non-fatal", joined))
    apart = 120  # over the 100 candidates a first page takes
    for n in range(apart):
        text = f"continue after the error, then continue {n}"
        write_session(projects, "/w/app", f"s-{n}", exchange(f"s-{n}", "/w/app", "what next?", text))
    with OllamaStandIn(real_models={"qwen3-embedding:4b": _same_vector_for_every_text}) as flat:
        settings = settings_for(flat.url, tmp_path / "claude", tmp_path / "data")
        await reindex(settings)
        hybrid = await run_search(settings, query="continue-on-error", mode="hybrid", top_k=5)
    assert hybrid.results[0].session_id == "s-joined"


def test_a_keyword_match_nearly_as_good_as_the_best_keeps_its_weight() -> None:
    # Min-max would give "b" nothing from keywords, as the last of two; its bm25 is 0.98 of the best's,
    # and the vectors prefer it.
    vector = [hit("b", 0.30, lines=(3, 3)), hit("a", 0.34, lines=(1, 1)), hit("x", 0.80, lines=(5, 5))]
    keyword = [hit("a", -10.0, lines=(1, 1)), hit("b", -9.8, lines=(3, 3))]
    assert [c.stored.id for c in fuse(vector, keyword, "why does the hangar door jam?")][:2] == ["b", "a"]


def test_keyword_scores_average_the_two_rankings_over_their_best() -> None:
    as_written = [(1, -8.0), (2, -4.0)]
    stemmed = [(2, -6.0), (3, -3.0)]
    assert keyword_scores([as_written, stemmed]) == [(2, -0.75), (1, -0.5), (3, -0.25)]
    assert keyword_scores([as_written]) == [(1, -1.0), (2, -0.5)]
    assert keyword_scores([[], stemmed]) == [(2, -0.5), (3, -0.25)]


def test_the_weight_follows_the_query() -> None:
    # "near" is the nearer vector, "word" the better keyword match; the vectors are the surer list.
    vector = [hit("near", 0.1, lines=(1, 1)), hit("word", 0.5, lines=(3, 3)), hit("mid", 0.9, lines=(5, 5))]
    # Keyword scores count from bm25's zero, so "word" must lead them by a real margin to matter.
    keyword = [hit("word", -9.0, lines=(3, 3)), hit("near", -6.0, lines=(1, 1)), hit("mid", -5.5, lines=(5, 5))]
    assert fuse(vector, keyword, "how did we speed up the container build?")[0].stored.id == "near"
    assert fuse(vector, keyword, "ensure_index_ready()")[0].stored.id == "word"


def test_the_list_surer_of_its_top_weighs_more() -> None:
    flat = [0.5, 0.49, 0.48, 0.47, 0.46]
    standing_out = [0.9, 0.4, 0.39, 0.38, 0.37]
    question = "what did we decide about the cache?"
    assert (
        vector_weight_for(question, standing_out, flat)
        > vector_weight_for(question, flat, flat)
        > vector_weight_for(question, flat, standing_out)
    )
    assert vector_weight_for(question, flat, flat) > vector_weight_for("test_checkout_total", flat, flat)


@pytest.mark.parametrize(
    ("query", "exact"),
    [
        ("test_checkout_total", True),
        ("mix phx.server", True),
        ("error TS2339: Property 'user'", True),
        ('"database is locked"', True),
        ("src/indexer/search.py", True),
        ("--allow-unrelated-histories", True),
        ("when did we get the phoenix server to start?", False),
        ("When did Caroline go to the LGBTQ support group?", False),
        ("what did we decide about the 2 caches?", False),
    ],
)
def test_looks_exact(query: str, exact: bool) -> None:
    assert looks_exact(query) is exact


def test_a_chunk_only_one_ranking_found_is_kept() -> None:
    fused = fuse([hit("v", 0.3, lines=(1, 1))], [hit("k", -2.0, lines=(4, 4))], "anything")
    assert {c.stored.id: c.match for c in fused} == {"v": "vector", "k": "keyword"}


# -- collapsing ----------------------------------------------------------------------------------


def test_collapse_keeps_one_result_per_exchange_spanning_its_windows() -> None:
    ranked = fuse(
        [hit("w2", 0.1, lines=(10, 14)), hit("other", 0.2, lines=(30, 31)), hit("w1", 0.3, lines=(8, 11))],
        [],
        "q",
        vector_weight=1.0,
    )
    kept = collapse(ranked)
    assert [c.stored.id for c in kept] == ["w2", "other"]
    assert kept[0].lines == (8, 14)


def test_windows_of_one_exchange_kept_apart_become_one_result_when_the_window_between_comes() -> None:
    # Windows 1 and 3 of an exchange do not overlap, so both are kept; window 2 overlaps both.
    window_3, window_1, window_2 = hit("w3", 0.1, lines=(20, 28)), hit("w1", 0.2, lines=(1, 10)), hit("w2", 0.3, lines=(9, 21))
    elsewhere = hit("other", 0.25, path="b.jsonl", lines=(1, 10))
    kept = collapse(fuse([window_3, window_1, elsewhere, window_2], [], "q", vector_weight=1.0))
    assert [c.stored.id for c in kept] == ["w3", "other"]
    assert kept[0].lines == (1, 28)


def test_a_session_that_matches_in_several_places_comes_first() -> None:
    # "lone" and "rich" score alike; rich's session also holds two other matching exchanges.
    def scored(id_: str, score: float, session: str, line: int) -> Candidate:
        return Candidate(hit(id_, 0.0, f"{session}.jsonl", (line, line), session_id=session), score)

    candidates = [
        scored("lone", 0.80, "s1", 1),
        scored("rich", 0.79, "s2", 1),
        scored("s2b", 0.5, "s2", 5),
        scored("s2c", 0.4, "s2", 9),
        scored("s1-window", 0.78, "s1", 1),
    ]  # another window of lone's own exchange is no extra evidence
    ranked = with_session_evidence(collapse(candidates))
    assert [c.stored.id for c in ranked][:2] == ["rich", "lone"]
    assert all(0.0 <= c.score <= 1.0 for c in ranked)


def test_collapse_drops_copies_of_the_same_text() -> None:
    ranked = fuse(
        [hit("a", 0.1, "x.jsonl", content_hash="h"), hit("b", 0.2, "y.jsonl", content_hash="h")], [], "q", vector_weight=1.0
    )
    assert [c.stored.id for c in collapse(ranked)] == ["a"]


# -- snippets ------------------------------------------------------------------------------------


def test_snippet_centres_on_the_exact_string_asked_for() -> None:
    text = "commit message about the branch " * 40 + "Bash output: " + GQC_ERROR + "." + " tail words" * 60
    shown = snippet(text, ["current", "branch", "spotter", "gqc", "upstream"], query=GQC_ERROR)
    assert GQC_ERROR in shown and len(shown) <= 702


def test_snippet_centres_on_the_rarest_matching_words() -> None:
    # "server" is everywhere; "xterm" is rare: the window with "xterm" wins over an early "server".
    text = "the server started " * 30 + "filler " * 100 + "xterm scroll events are captured by the page" + " filler" * 100
    others = ["the server is up", "server logs", "server restart", "a server"]
    weights = term_weights(["server", "xterm"], [text, *others])
    assert weights["xterm"] > weights["server"]
    assert "xterm scroll events" in snippet(text, ["server", "xterm"], weights=weights)


async def test_the_upstream_error_shows_in_the_snippet(fixture_index: Settings) -> None:
    """The issue's example: the right exchange's snippet shows the error, not the commit message."""
    response = await run_search(fixture_index, query=GQC_ERROR, top_k=5)
    shown = [h for h in response.results if GQC_ERROR in h.snippet]
    assert shown, [h.snippet[:120] for h in response.results]
    assert response.results.index(shown[0]) == 0


# -- reranking -----------------------------------------------------------------------------------


def _rerank_settings(base: Settings, url: str, **extra: object) -> Settings:
    return base.model_copy(update={"rerank_url": url, "rerank_model": "qwen3-reranker", **extra})


async def test_the_reranker_reorders_the_top_results(fixture_index: Settings, standin_server: OllamaStandIn) -> None:
    query = "phoenix server start background"
    fixture_index = fixture_index.model_copy(update={"result_tokens": 20000})  # all 20 fit
    plain = await run_search(fixture_index, query=query, top_k=20)
    assert len(plain.results) == 20
    standin_server.reset()
    reranked = await run_search(_rerank_settings(fixture_index, standin_server.url), query=query, top_k=10)
    assert standin_server.rerank_calls == 1
    assert not (reranked.note or "").startswith("Not reranked")
    plain_ids = [h.chunk_id for h in plain.results]
    new_ids = [h.chunk_id for h in reranked.results]
    # The first 20 (SESSION_SEARCH_RERANK_DEPTH) in another order: nothing new comes in.
    assert set(new_ids) <= set(plain_ids) and new_ids != plain_ids[:10]
    scores = [h.score for h in reranked.results]
    assert scores == sorted(scores, reverse=True)  # the stand-in's scores: the share of the query's words in the text


async def test_a_reranker_that_is_down_leaves_the_ranking_and_says_so(
    fixture_index: Settings, standin_server: OllamaStandIn
) -> None:
    plain = await run_search(fixture_index, query="phoenix server start background", top_k=10)
    down = await run_search(
        _rerank_settings(fixture_index, "http://127.0.0.1:9"), query="phoenix server start background", top_k=10
    )
    assert [h.chunk_id for h in down.results] == [h.chunk_id for h in plain.results]
    assert down.note and "Not reranked" in down.note and "127.0.0.1:9" in down.note


async def test_a_slow_reranker_is_cut_off_by_its_budget(fixture_index: Settings, standin_server: OllamaStandIn) -> None:
    standin_server.reset()
    plain = await run_search(fixture_index, query="phoenix server start background", top_k=10)
    standin_server.delay_s = 3.0
    try:
        slow = await run_search(
            _rerank_settings(fixture_index, standin_server.url, rerank_timeout_s=0.5),
            query="phoenix server start background",
            top_k=10,
        )
    finally:
        standin_server.reset()
    assert [h.chunk_id for h in slow.results] == [h.chunk_id for h in plain.results]
    assert slow.note and "did not answer within 0.5 s" in slow.note


def test_rerank_settings_are_checked(tmp_path: Path) -> None:
    from indexer.config import load_settings
    from indexer.errors import ConfigError

    with pytest.raises(ConfigError, match="SESSION_SEARCH_RERANK_URL"):
        load_settings(environ={"SESSION_SEARCH_RERANK_URL": "gpu-box:8080", "SESSION_SEARCH_DATA_DIR": str(tmp_path)})
    assert load_settings(environ={"SESSION_SEARCH_DATA_DIR": str(tmp_path)}).rerank_url is None  # off by default


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_search_takes_a_mode(fixture_index: Settings, standin_server: OllamaStandIn) -> None:
    env = {**os.environ, **env_for(standin_server.url, FIXTURE_HOME, fixture_index.data_dir)}
    answers = {}
    for mode in ("keyword", "vector"):
        proc = subprocess.run(
            [*CLI, "search", "REFUSED JOIN terminal", "--mode", mode, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        answers[mode] = json.loads(proc.stdout)
        assert answers[mode]["mode"] == mode
    assert [h["chunk_id"] for h in answers["keyword"]["results"]] != [h["chunk_id"] for h in answers["vector"]["results"]]
    bad = subprocess.run([*CLI, "search", "x", "--mode", "fuzzy"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "--mode" in bad.stderr
