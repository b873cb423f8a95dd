"""Which past exchanges recall quotes: above the similarity threshold, not the current session's,
and only when the best stands out from the rest."""

from __future__ import annotations

from indexer.models import SearchHit
from indexer.recall import MARGIN_RANK, MAX_EXCHANGES, relevant


def hit(session: str, similarity: float) -> SearchHit:
    return SearchHit(
        score=similarity,
        match="vector",
        session_id=session,
        project="/home/dev/rocket",
        git_branch="main",
        timestamp="2026-03-01T10:00:00Z",
        kind="exchange",
        agent_id="",
        snippet=f"an exchange of {session}",
        source_path=f"/p/{session}.jsonl",
        line_start=1,
        line_end=2,
        chunk_id=f"{session}-c",
        resume_command=f"claude --resume {session}",
    )


def test_a_best_hit_that_stands_out_is_quoted_with_the_others_above_the_threshold() -> None:
    hits = [hit("a", 0.72), hit("b", 0.58), hit("c", 0.51), hit("d", 0.49), hit("e", 0.40), hit("f", 0.35)]
    assert [h.session_id for h in relevant(hits, "now", 0.5, 0.1)] == ["a", "b", "c"]


def test_hits_as_alike_as_the_best_quote_nothing() -> None:
    hits = [hit(s, 0.66 - 0.01 * n) for n, s in enumerate("abcdef")]
    assert relevant(hits, "now", 0.5, 0.1) == []
    assert len(relevant(hits, "now", 0.5, 0.0)) == MAX_EXCHANGES  # margin 0 turns the gate off


def test_the_current_sessions_hits_neither_count_for_the_margin_nor_are_quoted() -> None:
    # The current session's own exchange is the likeliest to resemble the prompt: it must not make alike others look telling.
    alike_others = [hit(s, 0.60 - 0.01 * n) for n, s in enumerate("abcde")]
    assert relevant([hit("now", 0.9), *alike_others], "now", 0.5, 0.1) == []
    standing_out = [hit("now", 0.9), hit("a", 0.7), hit("b", 0.55), hit("c", 0.5), hit("d", 0.45), hit("e", 0.4)]
    assert [h.session_id for h in relevant(standing_out, "now", 0.5, 0.1)] == ["a", "b", "c"]


def test_fewer_hits_than_the_margin_rank_are_judged_by_the_threshold_alone() -> None:
    hits = [hit(s, 0.6) for s in "abcd"][: MARGIN_RANK - 1]
    assert len(relevant(hits, "now", 0.5, 0.1)) == MAX_EXCHANGES
    assert relevant([hit("a", 0.45)], "now", 0.5, 0.1) == []
