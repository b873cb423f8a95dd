"""Ranking and shaping: fusion of normalised scores, one result per exchange, snippets
centred on the match, and a token budget. The candidates come from retrieve.py; no SQL here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from indexer.chunk import count_tokens
from indexer.errors import InvalidArgument
from indexer.hits import StoredHit
from indexer.models import SearchHit
from indexer.terms import STOPWORDS, joined_words, starts_a_word, telling_terms, word_stem

SHOWN_PROJECTS = 8
# Fusion's weight on vectors, before each list's confidence moves it: measured on LoCoMo, the
# fixture questions and the near-miss set together (README, "Retrieval quality").
VECTOR_WEIGHT_WORDS = 0.4  # a question in words
VECTOR_WEIGHT_EXACT = 0.25  # a query that looks like a string to find
GAP_RANK = 5  # a list's confidence: its best score against its 5th
# Each of a session's two next-best other exchanges adds this share of its score to an exchange:
# a session that matches in several places is likelier the one asked about (README, "Retrieval quality").
SESSION_EVIDENCE = 0.2
SNIPPET_CHARS = 700
_QUOTED = re.compile(r"[\"`'][^\"`']{3,}[\"`']")
_CODE_WORD = re.compile(r"\d|_|\w[./:\\]\w|[a-z][A-Z]|^--?\w|\(\)")


@dataclass(slots=True)
class Candidate:
    """A chunk found by one or both rankings."""

    stored: StoredHit
    score: float = 0.0
    vector_rank: int | None = None
    keyword_rank: int | None = None
    lines: tuple[int, int] | None = None  # the exchange's lines, when windows were collapsed into this one

    @property
    def match(self) -> Literal["vector", "keyword", "both"]:
        if self.vector_rank is not None and self.keyword_rank is not None:
            return "both"
        return "vector" if self.vector_rank is not None else "keyword"


def matching_projects(fragment: str, known: list[str]) -> list[str]:
    """Indexed projects whose path contains fragment (case-insensitive)."""
    wanted = fragment.strip().rstrip("/").lower()
    found = sorted(p for p in known if wanted in p.lower())
    if not found:
        listing = ", ".join(sorted(known)[:SHOWN_PROJECTS]) or "none yet"
        raise InvalidArgument(f"No indexed project matches {fragment!r}. Indexed projects include: {listing}.")
    return found


def looks_exact(query: str) -> bool:
    """Whether a query asks for a string rather than a meaning: an identifier, path, flag, error
    text or hash (a word with digits, `_`, `.`, `/`, `::`, inner capitals, or quotes around it)."""
    if _QUOTED.search(query):
        return True
    words = query.split()
    code = sum(1 for w in words if _CODE_WORD.search(w.strip(".,;:?!()[]{}'\"")))
    return code > 0 and (code * 3 >= len(words) or not query.rstrip().endswith("?"))


def _normalised(scores: dict[str, float]) -> dict[str, float]:
    """Scores mapped to [0, 1] between the list's worst and best (min-max)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {id_: (s - lo) / (hi - lo) if hi > lo else 1.0 for id_, s in scores.items()}


def _over_best(scores: Sequence[float], none_above_zero: float = 0.0) -> list[float]:
    """Each score over the best (a zero stays zero); all `none_above_zero` when none is above 0."""
    best = max(scores, default=0.0)
    return [s / best if best > 0 else none_above_zero for s in scores]


def keyword_scores(rankings: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    """One keyword ranking from FTS5's rankings of a query's words as written and stemmed: in
    each, a chunk's bm25 over the best's (bm25's own zero kept: no match scores 0), averaged
    with equal weight. (rowid, -score), best first: lower is better, as bm25.

    Stemming finds "researched" for "researching"; counted alone it also joins words that
    differ in code ("docs" and "doc"). Half of each is measured in the README ("Retrieval quality").
    """
    mixed: dict[int, float] = {}
    for ranking in rankings:
        for (rowid, _), share in zip(ranking, _over_best([-score for _, score in ranking]), strict=True):
            mixed[rowid] = mixed.get(rowid, 0.0) + share / len(rankings)
    return sorted(((rowid, -score) for rowid, score in mixed.items()), key=lambda pair: pair[1])


def _standout(scores: Sequence[float]) -> float:
    """How far a list's best score stands above its GAP_RANK-th, relative to the best: 0 for a flat list."""
    if len(scores) < 2 or scores[0] <= 0:
        return 0.0
    return max(0.0, (scores[0] - scores[min(GAP_RANK, len(scores)) - 1]) / scores[0])


def vector_weight_for(query: str, cosines: Sequence[float], matches: Sequence[float]) -> float:
    """The vectors' share of the fused score: set by the kind of query, then moved toward the
    list whose best hits stand out more from the rest (a list that is sure of its top)."""
    base = VECTOR_WEIGHT_EXACT if looks_exact(query) else VECTOR_WEIGHT_WORDS
    sure_v, sure_k = 0.5 + _standout(cosines), 0.5 + _standout(matches)
    return base * sure_v / (base * sure_v + (1 - base) * sure_k)


def coordinated(query: str, keyword: Sequence[StoredHit], *, widened: bool = True) -> list[StoredHit]:
    """Keyword hits with their scores scaled by the share of the query's telling words each holds
    (the coordination factor of classic Lucene scoring), best first.

    BM25 adds up what each matched word is worth, so a chunk that repeats one or two of a
    question's rarer words can outrank the one that holds most of them (README, "Retrieval
    quality"). A word counts when the chunk holds a word starting with its stem; FTS5 matched at
    least one, so the share is never below one word's. Words the query joins with hyphens count
    once more, joined: a chunk holding `continue-on-error` holds more of that query than one
    holding "continue" and "error" apart, which FTS5 ranks alike. Hits of a keyword search that
    did not widen all hold every word as FTS5 reads them, so then only joined words are worth a count."""
    joined = joined_words(query)
    stems = [word_stem(t) for t in telling_terms(query)] + joined
    if len(stems) < 2 or not (widened or joined):
        return list(keyword)
    scaled = []
    for hit in keyword:
        lowered = hit.text.lower()
        held = max(1, sum(1 for stem in stems if starts_a_word(lowered, stem)))
        scaled.append(replace(hit, distance=hit.distance * held / len(stems)))
    return sorted(scaled, key=lambda h: h.distance)


def fuse(
    vector: Sequence[StoredHit],
    keyword: Sequence[StoredHit],
    query: str = "",
    *,
    vector_weight: float | None = None,
) -> list[Candidate]:
    """A convex combination of the two rankings' normalised scores (Bruch et al., TOIS 2023):
    cosines min-max, keyword scores (`coordinated` first) over the best's; weighted by the query
    and by how sure each list is of its top (`vector_weight_for`).

    Unlike reciprocal ranks, scores keep how far ahead the first hits are: a lone strong keyword
    match outweighs many vaguely similar vectors. A chunk one ranking did not return gets 0 from it.
    """
    return fuse_coordinated(vector, coordinated(query, keyword), query, vector_weight=vector_weight)


def fuse_coordinated(
    vector: Sequence[StoredHit],
    keyword: Sequence[StoredHit],
    query: str = "",
    *,
    vector_weight: float | None = None,
) -> list[Candidate]:
    """`fuse`, for keyword hits already `coordinated` (a search does that beside the vector search)."""
    cosines = {h.id: 1.0 - h.distance for h in vector}
    matches = {h.id: -h.distance for h in keyword}  # keyword scores are negative, lower is better
    if vector_weight is None:
        vector_weight = vector_weight_for(query, list(cosines.values()), list(matches.values()))
    # Keyword scores over the best's: their zero means no match, which min-max would erase;
    # a cosine has no such floor (README, "Retrieval quality").
    by_vector = _normalised(cosines)
    by_keyword = dict(zip(matches, _over_best(list(matches.values()), none_above_zero=1.0), strict=True))
    found: dict[str, Candidate] = {}
    for rank, hit in enumerate(vector, start=1):
        found[hit.id] = Candidate(hit, vector_weight * by_vector[hit.id], vector_rank=rank)
    for rank, hit in enumerate(keyword, start=1):
        candidate = found.setdefault(hit.id, Candidate(hit))
        candidate.keyword_rank = rank
        candidate.score += (1 - vector_weight) * by_keyword[hit.id]
    return sorted(found.values(), key=lambda c: -c.score)


def with_session_evidence(candidates: list[Candidate], share: float = SESSION_EVIDENCE) -> list[Candidate]:
    """Exchanges (collapsed candidates) best first, each score raised by `share` of the scores of
    its session's two best other exchanges, then scaled back to 0-1. Search returns exchanges, so
    the evidence is counted per exchange: windows of one exchange are not two matches."""
    by_session: dict[object, list[Candidate]] = {}
    for candidate in candidates:
        by_session.setdefault(candidate.stored.metadata.get("session_id"), []).append(candidate)
    raised: dict[int, float] = {}
    for candidate in candidates:
        start, end = _lines(candidate.stored)
        others = [
            o.score
            for o in by_session[candidate.stored.metadata.get("session_id")]
            if o is not candidate and not _overlap(o, start, end)
        ]
        raised[id(candidate)] = (candidate.score + share * sum(sorted(others, reverse=True)[:2])) / (1 + 2 * share)
    for candidate in candidates:
        candidate.score = raised[id(candidate)]
    return sorted(candidates, key=lambda c: -c.score)


def single(hits: Sequence[StoredHit], *, keyword: bool) -> list[Candidate]:
    """One ranking as candidates: cosine similarity for vectors, the keyword score (1 for the best) for keywords."""
    if keyword:
        shares = _over_best([-h.distance for h in hits])
        return [
            Candidate(h, round(share, 4), keyword_rank=r) for r, (h, share) in enumerate(zip(hits, shares, strict=True), start=1)
        ]
    return [Candidate(h, round(1.0 - h.distance, 4), vector_rank=r) for r, h in enumerate(hits, start=1)]


def _lines(hit: StoredHit) -> tuple[int, int]:
    return _int(hit.metadata, "line_start"), _int(hit.metadata, "line_end")


def _span(candidate: Candidate) -> tuple[int, int]:
    """The lines a result covers: its exchange's, once windows were folded into it."""
    return candidate.lines or _lines(candidate.stored)


def _overlap(kept: Candidate, start: int, end: int) -> bool:
    kept_start, kept_end = _span(kept)
    return start <= kept_end and kept_start <= end


def _same_exchange(kept: Candidate, start: int, end: int, group: object) -> bool:
    """Windows of one exchange: their lines overlap, or they name the same first message (windows 1
    and 3 of a long exchange do not overlap; chunks indexed before `group_uuid` lack it)."""
    return _overlap(kept, start, end) or (group is not None and group == kept.stored.metadata.get("group_uuid"))


def _fold_reached(widened: Candidate, kept: list[Candidate], same_file: list[Candidate]) -> None:
    """A widened result can now reach another kept window of its exchange (windows 1 and 3 kept,
    then window 2): each such pair becomes one result, the better ranked, spanning both."""
    while True:
        other = next((k for k in same_file if k is not widened and _overlap(k, *_span(widened))), None)
        if other is None:
            return
        better, worse = sorted((widened, other), key=kept.index)
        (b_start, b_end), (w_start, w_end) = _span(better), _span(worse)
        better.lines = (min(b_start, w_start), max(b_end, w_end))
        kept.remove(worse)
        same_file.remove(worse)
        widened = better


def collapse(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One result per exchange, and none for copies: the best-ranked one stays, and spans
    the lines of the windows folded into it, so the hit covers where the answer is."""
    kept: list[Candidate] = []
    by_source: dict[object, list[Candidate]] = {}
    kept_hashes: set[object] = set()
    for candidate in candidates:
        meta = candidate.stored.metadata
        start, end = _lines(candidate.stored)
        # Windows of one exchange: of one file, overlapping what is kept so far or of the same exchange.
        group = meta.get("group_uuid")
        twin = next((k for k in by_source.get(meta.get("source_path"), ()) if _same_exchange(k, start, end, group)), None)
        if twin is not None:
            twin_start, twin_end = twin.lines or (start, end)
            twin.lines = (min(twin_start, start), max(twin_end, end))
            _fold_reached(twin, kept, by_source[meta.get("source_path")])
            continue
        content_hash = meta.get("content_hash")
        if content_hash and content_hash in kept_hashes:
            continue  # the same text copied elsewhere (a resumed session's copy)
        candidate.lines = (start, end)
        kept.append(candidate)
        by_source.setdefault(meta.get("source_path"), []).append(candidate)
        if content_hash:
            kept_hashes.add(content_hash)
    return kept


def _exact_at(text: str, query: str) -> int | None:
    """Where the whole query occurs in text (case and runs of whitespace ignored), or None."""
    words = query.split()
    if len(" ".join(words)) < 4:
        return None
    found = re.search(r"\s+".join(map(re.escape, words)), text, re.IGNORECASE)
    return found.start() if found else None


def term_weights(terms: Sequence[str], texts: Sequence[str]) -> dict[str, float]:
    """How telling each query word is: its inverse frequency among the texts a search found
    (a local IDF, no index lookup); common words get nothing."""
    telling = [t for t in terms if len(t) > 1 and t not in STOPWORDS] or [t for t in terms if len(t) > 2]
    lowered = [t.lower() for t in texts]
    n = len(lowered)
    weights = {}
    for term in telling:
        df = sum(1 for text in lowered if term in text)
        weights[term] = math.log(1 + (n + 1) / (df + 1))
    return weights


def snippet(
    text: str, terms: Sequence[str], width: int = SNIPPET_CHARS, query: str = "", weights: dict[str, float] | None = None
) -> str:
    """About `width` characters of text showing why it matched: the exact query string when the text
    holds it, else the window holding the most telling (rarest) query words."""
    if len(text) <= width:
        return text
    centre = _exact_at(text, query) if query else None
    if centre is None:
        centre = _densest(text.lower(), weights or {t: 1.0 for t in terms if len(t) > 2}, width)
    start = max(0, min(centre - width // 4, len(text) - width))
    body = text[start : start + width]
    return ("…" if start > 0 else "") + body + ("…" if start + width < len(text) else "")


def _densest(lowered: str, weights: dict[str, float], width: int) -> int:
    """The start of the word occurrence whose window holds the largest weight of distinct query words (0: none)."""
    hits = sorted((p.start(), term) for term in weights for p in re.finditer(re.escape(term), lowered))
    best, best_at = 0.0, 0
    for i, (at, _) in enumerate(hits):
        limit = at + width * 3 // 4
        value = sum(weights[t] for t in {term for start, term in hits[i:] if start < limit})
        if value > best:
            best, best_at = value, at
    return best_at


def _str(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def _int(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) else 0


def to_hit(candidate: Candidate, terms: Sequence[str], query: str = "", weights: dict[str, float] | None = None) -> SearchHit:
    stored = candidate.stored
    meta = stored.metadata
    tools = meta.get("tools")
    session_id = _str(meta, "session_id")
    return SearchHit(
        score=round(candidate.score, 4),
        match=candidate.match,
        session_id=session_id,
        project=_str(meta, "project"),
        git_branch=_str(meta, "git_branch"),
        timestamp=_str(meta, "timestamp"),
        kind=_str(meta, "kind"),
        agent_id=_str(meta, "agent_id"),
        snippet=snippet(stored.text, terms, query=query, weights=weights),
        source_path=_str(meta, "source_path"),
        line_start=candidate.lines[0] if candidate.lines else _int(meta, "line_start"),
        line_end=candidate.lines[1] if candidate.lines else _int(meta, "line_end"),
        tools=[t for t in tools if isinstance(t, str)] if isinstance(tools, list) else [],
        chunk_id=stored.id,
        resume_command=f"claude --resume {session_id}",
    )


def within_budget(hits: Sequence[SearchHit], budget_tokens: int) -> list[SearchHit]:
    """As many hits, in order, as fit in the token budget (at least one)."""
    kept: list[SearchHit] = []
    used = 0
    for hit in hits:
        used += count_tokens(hit.model_dump_json())
        if kept and used > budget_tokens:
            break
        kept.append(hit)
    return kept
