"""The ranking and shaping functions of indexer/search.py on hand-made hits: how the two rankings
combine, one result per exchange, what a snippet shows, the token budget, and the filters a user
types. Behaviour only: no test pins a weight or a fused score."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.calls import reindex, run_search
from support.env import settings_for
from support.home import write_session
from support.ollama_standin import OllamaStandIn

from indexer.chunk import count_tokens
from indexer.errors import InvalidArgument
from indexer.hits import StoredHit
from indexer.search import Candidate, collapse, fuse, matching_projects, single, snippet, to_hit, within_budget
from indexer.terms import query_terms


def hit(
    id_: str, distance: float, path: str = "a.jsonl", lines: tuple[int, int] = (1, 2), text: str = "", **meta: object
) -> StoredHit:
    metadata = {"source_path": path, "line_start": lines[0], "line_end": lines[1], "session_id": f"s-{id_}", **meta}
    return StoredHit(id_, text or f"text of {id_}", metadata, distance)


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.stored.id for c in candidates]


# -- fusion --------------------------------------------------------------------------------------


def test_a_chunk_both_rankings_found_outranks_one_only_the_vectors_found() -> None:
    # "both" and "vec" are equally near; only "both" also matched the words.
    vector = [hit("vec", 0.30, lines=(1, 1)), hit("both", 0.30, lines=(5, 5)), hit("far", 0.80, lines=(9, 9))]
    keyword = [hit("both", -6.0, lines=(5, 5)), hit("weak", -1.0, lines=(12, 12))]
    fused = fuse(vector, keyword, "why does the deploy hang")
    assert ids(fused).index("both") < ids(fused).index("vec")
    assert fused[0].stored.id == "both" and fused[0].match == "both"


def test_a_chunk_holding_most_of_the_question_outranks_one_repeating_a_rare_word_of_it() -> None:
    question = "why did we run out of database connections when traffic went up"
    sqlite = "database is locked: the database file was held by a second database connection " * 3
    postgres = "traffic went up and the database ran out of connections: Postgres refused them at max_connections"
    vector = [hit("sqlite", 0.40, lines=(1, 1), text=sqlite), hit("postgres", 0.40, lines=(5, 5), text=postgres)]
    # BM25 favours the chunk that repeats "database"; the other also holds "traffic" and "went".
    keyword = [hit("sqlite", -9.0, lines=(1, 1), text=sqlite), hit("postgres", -7.0, lines=(5, 5), text=postgres)]
    assert ids(fuse(vector, keyword, question)) == ["postgres", "sqlite"]
    assert ids(fuse(vector, keyword, "database")) == ["sqlite", "postgres"]  # one word: BM25's order stands


def test_fused_results_come_best_first_each_chunk_once() -> None:
    vector = [hit(f"v{i}", 0.1 * i, lines=(i * 10, i * 10)) for i in range(1, 6)]
    keyword = [hit("v3", -9.0, lines=(30, 30)), hit("k1", -4.0, lines=(70, 70)), hit("v1", -2.0, lines=(10, 10))]
    fused = fuse(vector, keyword, "how did we fix the cache")
    assert sorted(ids(fused)) == sorted({"v1", "v2", "v3", "v4", "v5", "k1"})
    assert [c.score for c in fused] == sorted((c.score for c in fused), reverse=True)
    assert all(0.0 <= c.score <= 1.0 for c in fused)


def test_all_weight_on_one_ranking_keeps_that_rankings_order() -> None:
    vector = [hit("a", 0.1, lines=(1, 1)), hit("b", 0.2, lines=(3, 3)), hit("c", 0.6, lines=(5, 5))]
    keyword = [hit("c", -9.0, lines=(5, 5)), hit("b", -5.0, lines=(3, 3)), hit("a", -1.0, lines=(1, 1))]
    assert ids(fuse(vector, keyword, "q", vector_weight=1.0)) == ["a", "b", "c"]
    assert ids(fuse(vector, keyword, "q", vector_weight=0.0)) == ["c", "b", "a"]


def test_nothing_found_fuses_to_nothing_and_one_list_alone_is_kept_in_order() -> None:
    assert fuse([], [], "anything") == []
    keyword = [hit("k1", -8.0, lines=(1, 1)), hit("k2", -3.0, lines=(3, 3)), hit("k3", -1.0, lines=(5, 5))]
    fused = fuse([], keyword, "anything")
    assert ids(fused) == ["k1", "k2", "k3"]
    assert {c.match for c in fused} == {"keyword"}


def test_a_single_ranking_scores_better_hits_higher_within_0_and_1() -> None:
    vectors = single([hit("a", 0.1), hit("b", 0.4), hit("c", 0.9)], keyword=False)
    words = single([hit("a", -12.0), hit("b", -3.0), hit("c", -0.5)], keyword=True)
    for ranked, match in ((vectors, "vector"), (words, "keyword")):
        scores = [c.score for c in ranked]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert {c.match for c in ranked} == {match}


# -- collapsing ----------------------------------------------------------------------------------


def test_collapse_keeps_the_best_window_of_each_exchange_and_the_order() -> None:
    ranked = fuse(
        [
            hit("x-late", 0.10, "x.jsonl", (20, 26)),
            hit("y-only", 0.20, "y.jsonl", (20, 26)),  # the same lines in another file: another exchange
            hit("x-early", 0.30, "x.jsonl", (14, 21)),
            hit("x-apart", 0.40, "x.jsonl", (40, 44)),  # the same file, lines apart: another exchange
        ],
        [], "q", vector_weight=1.0,
    )  # fmt: skip
    kept = collapse(ranked)
    assert ids(kept) == ["x-late", "y-only", "x-apart"]
    assert [c.lines for c in kept] == [(14, 26), (20, 26), (40, 44)]


def test_a_window_overlapping_the_widened_span_is_folded_in_too() -> None:
    # "mid" overlaps "top"; "low" overlaps only the span "top" has once "mid" is folded into it.
    ranked = fuse(
        [hit("top", 0.1, lines=(10, 15)), hit("mid", 0.2, lines=(5, 11)), hit("low", 0.3, lines=(2, 6))],
        [],
        "q",
        vector_weight=1.0,
    )
    kept = collapse(ranked)
    assert ids(kept) == ["top"] and kept[0].lines == (2, 15)


def test_windows_of_one_exchange_are_one_result_even_when_the_window_between_was_not_found() -> None:
    # Windows 1 and 3 of a long exchange do not overlap; window 2, which would join them, ranked too low to be a candidate.
    ranked = fuse(
        [
            hit("w3", 0.1, lines=(40, 60), group_uuid="ex1"),
            hit("other", 0.2, lines=(70, 75), group_uuid="ex2"),  # the next exchange of the file
            hit("w1", 0.3, lines=(10, 30), group_uuid="ex1"),
            hit("older", 0.4, lines=(1, 5)),  # indexed before group_uuid: by its lines alone
        ],
        [], "q", vector_weight=1.0,
    )  # fmt: skip
    kept = collapse(ranked)
    assert ids(kept) == ["w3", "other", "older"]
    assert [c.lines for c in kept] == [(10, 60), (70, 75), (1, 5)]


def test_collapse_keeps_different_texts_and_chunks_without_a_hash() -> None:
    ranked = fuse(
        [hit("a", 0.1, "x.jsonl", content_hash="h1"), hit("b", 0.2, "y.jsonl", content_hash="h2"), hit("c", 0.3, "z.jsonl"), hit("d", 0.4, "w.jsonl")],
        [], "q", vector_weight=1.0,
    )  # fmt: skip
    assert ids(collapse(ranked)) == ["a", "b", "c", "d"]


def test_a_collapsed_hit_reports_the_lines_of_the_whole_exchange() -> None:
    kept = collapse(fuse([hit("w2", 0.1, lines=(10, 14)), hit("w1", 0.2, lines=(8, 11))], [], "q", vector_weight=1.0))
    shown = to_hit(kept[0], ["q"])
    assert (shown.line_start, shown.line_end) == (8, 14)
    assert shown.chunk_id == "w2" and shown.resume_command == f"claude --resume {shown.session_id}"


# -- snippets ------------------------------------------------------------------------------------


def test_a_short_text_is_shown_whole() -> None:
    text = "the migration failed on the users table"
    assert snippet(text, ["migration"], query="migration") == text


def test_a_long_text_is_cut_to_about_the_width_with_marks_where_it_was_cut() -> None:
    text = "alpha " * 200 + "the kafka consumer lag grew" + " omega" * 200
    shown = snippet(text, ["kafka", "consumer", "lag"], width=300)
    assert "kafka consumer lag" in shown
    assert shown.startswith("…") and shown.endswith("…")
    assert len(shown) <= 302


def test_the_exact_string_is_found_whatever_its_case_and_line_breaks() -> None:
    text = "noise " * 300 + "Error: Database   is\nLOCKED while writing" + " noise" * 300
    shown = snippet(text, ["database", "locked"], width=200, query="database is locked")
    assert "Database   is\nLOCKED" in shown


def test_with_no_query_word_in_the_text_the_snippet_starts_at_the_beginning() -> None:
    text = "first words of the exchange " + "filler " * 300
    shown = snippet(text, ["zeppelin"], width=200)
    assert shown.startswith("first words") and shown.endswith("…")


def test_query_words_are_lower_cased_once_each_in_order() -> None:
    assert query_terms("Fix the FIX for mix phx.server, then fix it") == [
        "fix",
        "the",
        "for",
        "mix",
        "phx",
        "server",
        "then",
        "it",
    ]
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) < 100  # a pasted log does not become 100 terms


# -- the token budget ----------------------------------------------------------------------------


def shaped(n: int, text: str) -> list:
    return [to_hit(Candidate(hit(f"c{i}", 0.1 * i, lines=(i * 10, i * 10 + 1), text=text)), ["x"]) for i in range(n)]


def test_hits_are_kept_in_order_until_the_budget_is_spent() -> None:
    hits = shaped(10, "word " * 100)
    one = count_tokens(hits[0].model_dump_json())
    kept = within_budget(hits, one * 3 + one // 2)
    assert [h.chunk_id for h in kept] == ["c0", "c1", "c2"]
    assert within_budget(hits, one * 100) == hits


def test_the_best_hit_is_returned_even_when_it_alone_is_over_the_budget() -> None:
    hits = shaped(3, "word " * 2000)
    assert [h.chunk_id for h in within_budget(hits, 10)] == ["c0"]


# -- filters -------------------------------------------------------------------------------------


def test_a_project_fragment_matches_any_case_and_a_trailing_slash() -> None:
    known = ["/home/dev/Spotter", "/home/dev/spotter-api", "/srv/billing"]
    assert matching_projects("spotter/", known) == ["/home/dev/Spotter", "/home/dev/spotter-api"]
    assert matching_projects("BILLING", known) == ["/srv/billing"]


def test_a_project_nothing_matches_is_an_error_naming_the_projects_there_are() -> None:
    with pytest.raises(InvalidArgument) as caught:
        matching_projects("payroll", ["/home/dev/spotter", "/srv/billing"])
    assert "payroll" in str(caught.value) and "/srv/billing" in str(caught.value)


def tool_exchange(session_id: str, tool: str, prompt: str) -> list[dict]:
    """A prompt, a tool call and its result, and an answer, as Claude Code writes them."""
    base = {
        "sessionId": session_id,
        "cwd": "/w/app",
        "gitBranch": "main",
        "timestamp": "2026-03-01T10:00:00Z",
        "isSidechain": False,
        "version": "2.1.0",
    }
    call = {"type": "tool_use", "id": f"t-{session_id}", "name": tool, "input": {"command": "make deploy"}}
    result = {"type": "tool_result", "tool_use_id": f"t-{session_id}", "content": "deployed"}
    return [
        {**base, "type": "user", "uuid": f"{session_id}-u0", "message": {"role": "user", "content": prompt}},
        {**base, "type": "assistant", "uuid": f"{session_id}-a0", "message": {"id": f"m-{session_id}-0", "role": "assistant", "content": [call]}},
        {**base, "type": "user", "uuid": f"{session_id}-u1", "message": {"role": "user", "content": [result]}},
        {**base, "type": "assistant", "uuid": f"{session_id}-a1", "message": {"id": f"m-{session_id}-1", "role": "assistant", "content": [{"type": "text", "text": "Deployed."}]}},
    ]  # fmt: skip


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
async def test_a_tool_filter_matches_the_whole_tool_name_not_a_prefix(ollama: OllamaStandIn, tmp_path: Path, mode: str) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/w/app", "s-bash", tool_exchange("s-bash", "Bash", "deploy the walrus service"))
    write_session(projects, "/w/app", "s-output", tool_exchange("s-output", "BashOutput", "deploy the walrus service again"))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    everything = await run_search(settings, query="deploy the walrus service", mode=mode)
    assert {h.session_id for h in everything.results} == {"s-bash", "s-output"}
    assert [
        h.session_id for h in (await run_search(settings, query="deploy the walrus service", mode=mode, tool="Bash")).results
    ] == ["s-bash"]
    assert [
        h.session_id
        for h in (await run_search(settings, query="deploy the walrus service", mode=mode, tool="BashOutput")).results
    ] == ["s-output"]
