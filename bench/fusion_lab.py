"""Fusion experiments without re-embedding: capture each query's two ranked lists once, then
score fusion functions offline on LoCoMo and on the evaluation sets side by side.

    PYTHONPATH=$PWD .venv-bench/bin/python bench/fusion_lab.py capture --keep /tmp/locomo   # needs bench/locomo.py --keep first
    .venv/bin/python bench/fusion_lab.py compare --keep /tmp/locomo
    ... capture --keep /tmp/locomo --model-dir DIR   # another model (locomo.py --keep --model-dir DIR first)
    ... compare --keep /tmp/locomo --model all-mpnet-base-v2
    ... capture --keep /tmp/locomo --e5   # multilingual-e5-small (locomo.py --keep --e5 first); compare --model multilingual-e5-small
    ... compare --keep /tmp/locomo --pooled   # the fixture set scored with its pooled judgments too
    .venv/bin/python bench/fusion_lab.py pool --keep /tmp/locomo --out /tmp/pool   # what the pooled judgments judged

`capture` runs a hybrid search per question through SessionSearch with the product's fusion
wrapped, so what is kept is exactly the vector list (with the exact rescoring of keyword hits) and
the keyword list the product fused. `compare` applies every fusion variant, collapses with the
product's `collapse`, and prints the metrics of each set. `pool` writes, per fixture paraphrase,
the exchanges that hybrid, vector or keyword put in its first 10 and that span no judged line, with
their records' indexed text, shuffled so that a judge cannot tell which mode found them
(bench/eval/README.md, "Pooled judgments"). Never imported by the product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import locomo  # noqa: E402
import quality  # noqa: E402

from indexer import query as searching  # noqa: E402  (where search calls the ranking functions)
from indexer import search as ranking  # noqa: E402
from indexer.models import SearchRequest  # noqa: E402
from indexer.retrieve import Retriever  # noqa: E402
from indexer.search import Candidate, StoredHit, collapse  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

Captured = tuple[str, list[StoredHit], list[StoredHit]]  # query, vector hits, keyword hits
NEARMISS_QUERIES = ROOT / "bench" / "eval" / "nearmiss.jsonl"
NEARMISS_HOME = ROOT / "bench" / "eval" / "nearmiss"


async def _capture(settings: Any, queries: Sequence[str]) -> list[Captured]:
    """The vector list the product fuses (with the exact rescoring of keyword hits) and its keyword
    hits before the word count (the variants count, as `fuse` does)."""
    kept: dict[str, list[StoredHit]] = {}
    real_fuse, real_hits = searching.fuse_coordinated, Retriever.keyword_hits_at

    def spy_fuse(vector: Sequence[StoredHit], keyword: Sequence[StoredHit], *args: Any, **kw: Any) -> list[Candidate]:
        kept["vector"] = list(vector)
        return real_fuse(vector, keyword, *args, **kw)

    def spy_hits(self: Retriever, ranked: Sequence[tuple[int, float]]) -> list[StoredHit]:
        kept["keyword"] = real_hits(self, ranked)
        return kept["keyword"]

    searching.fuse_coordinated = spy_fuse  # type: ignore[assignment]
    Retriever.keyword_hits_at = spy_hits  # type: ignore[method-assign]
    index = SessionSearch(settings)
    try:
        await index.reindex()
        out = []
        for q in queries:
            kept.clear()
            await index.search(SearchRequest(query=q, mode="hybrid", top_k=50))
            out.append((q, kept["vector"], kept["keyword"]))
        return out
    finally:
        searching.fuse_coordinated = real_fuse  # type: ignore[assignment]
        Retriever.keyword_hits_at = real_hits  # type: ignore[method-assign]
        await index.aclose()


def capture(keep: Path, standin_url: str, model: str, label: str) -> None:
    """Every question's two lists, from the indexes `locomo.py --keep` left in keep/label."""
    for conversation in locomo.load():
        where = keep / label / conversation.sample_id
        converted = locomo.prepare(conversation, where)
        settings = quality.build_settings(standin_url, converted.claude_home, where / "data", model)
        got = asyncio.run(_capture(settings, [q.question for q in conversation.questions]))
        (where / "captured.pkl").write_bytes(pickle.dumps((got, converted, conversation)))
        print(f"captured {conversation.sample_id}", file=sys.stderr)
    for name, queries_path, home in (
        ("eval", quality.DEFAULT_QUERIES, quality.DEFAULT_FIXTURES),
        ("nearmiss", NEARMISS_QUERIES, NEARMISS_HOME),
    ):
        if not queries_path.exists():
            continue
        queries = quality.load_queries(queries_path)
        where = keep / label / name
        settings = quality.build_settings(standin_url, home, where / "data", model)
        got = asyncio.run(_capture(settings, [q.query for q in queries]))
        (where / "captured.pkl").write_bytes(pickle.dumps((got, queries)))
        print(f"captured {name}", file=sys.stderr)


# --------------------------------------------------------------------------- offline scoring

Fusion = Callable[[str, Sequence[StoredHit], Sequence[StoredHit]], list[Candidate]]


def score_locomo(keep: Path, fusion: Fusion) -> dict[str, float]:
    scores = locomo.Scores()
    for path in sorted(keep.glob("conv-*/captured.pkl")):
        got, converted, conversation = pickle.loads(path.read_bytes())
        for (query, vector, keyword), question in zip(got, conversation.questions, strict=True):
            ranked = _exchanges(fusion, query, vector, keyword)
            hits = [
                locomo.Hit(
                    converted.session_numbers.get(str(c.stored.metadata.get("session_id")), -1),
                    Path(str(c.stored.metadata.get("source_path"))).name,
                    *(c.lines or (0, 0)),
                )
                for c in ranked
            ]
            scores.add(question, hits, converted.turn_lines)
    return scores.mean()


def score_eval(keep: Path, name: str, fusion: Fusion, pooled: bool = False) -> dict[str, dict[str, float]]:
    path = keep / name / "captured.pkl"
    if not path.exists():
        return {}
    got, queries = pickle.loads(path.read_bytes())
    if pooled and name == "eval":
        queries = quality.with_pooled(queries)
    outcomes = []
    for (query, vector, keyword), q in zip(got, queries, strict=True):
        ranked = _exchanges(fusion, query, vector, keyword)[: quality.TOP_K]
        spans = [quality.Span(str(c.stored.metadata.get("source_path")), *(c.lines or (0, 0))) for c in ranked]
        outcomes.append(quality.score(q, spans))
    return quality.subsets(outcomes)


POOLED_MODES = ("product fuse + session evidence (search)", "vector", "keyword")  # hybrid as searched, and its two halves


def pool(keep: Path, out: Path, top: int = quality.TOP_K, seed: int = 7) -> int:
    """Per fixture paraphrase, a JSON file of the unjudged exchanges any mode ranks in its first
    `top`: overlapping spans of one file merged into one candidate, in a random order, each with
    its records' indexed text (quality.record_text). Returns the number of candidates."""
    got, queries = pickle.loads((keep / "eval" / "captured.pkl").read_bytes())
    fusions = [variants()[name] for name in POOLED_MODES]
    projects = quality.DEFAULT_FIXTURES / "projects"
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for (query, vector, keyword), q in zip(got, queries, strict=True):
        if q.style != "paraphrase":
            continue
        spans: dict[str, list[tuple[int, int]]] = {}
        for fusion in fusions:
            for c in _exchanges(fusion, query, vector, keyword)[:top]:
                span = quality.Span(str(c.stored.metadata.get("source_path")), *(c.lines or (0, 0)))
                if not quality._covered(span, q.relevant):
                    spans.setdefault(span.source_path.split("/projects/")[-1], []).append((span.line_start, span.line_end))
        candidates = [
            {"file": file, "lines": [first, last], "records": _records(projects / file, first, last)}
            for file, ranges in spans.items()
            for first, last in _merged(ranges)
        ]
        rng.shuffle(candidates)
        for number, candidate in enumerate(candidates, start=1):
            candidate["candidate"] = number
        known = [{"file": t.file, "line": t.line, "evidence": t.evidence} for t in q.relevant]
        record = {"id": q.id, "query": q.query, "known_answer": known, "candidates": candidates}
        (out / f"{q.id}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
        total += len(candidates)
    return total


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]


def _records(path: Path, first: int, last: int) -> list[dict[str, Any]]:
    """The indexed text of each record from line first to last (1-based), as quality.py reads it."""
    with path.open("rb") as fh:
        raw = fh.read().splitlines()[first - 1 : last]
    records = []
    for number, line in enumerate(raw, start=first):
        try:
            text = quality.record_text(json.loads(line))
        except (ValueError, AttributeError):
            continue
        if text and text.strip():
            records.append({"line": number, "text": text})
    return records


def _exchanges(fusion: Fusion, query: str, vector: Sequence[StoredHit], keyword: Sequence[StoredHit]) -> list[Candidate]:
    """Collapsed as the search does; the product's hybrid also weighs each session's other exchanges."""
    ranked = collapse(fusion(query, vector, keyword))
    return ranking.with_session_evidence(ranked) if getattr(fusion, "session_evidence", False) else ranked


def _with_session_evidence(fusion: Fusion) -> Fusion:
    fusion.session_evidence = True  # type: ignore[attr-defined]
    return fusion


def variants() -> dict[str, Fusion]:
    """name -> fusion(query, vector, keyword)."""
    out: dict[str, Fusion] = {
        "keyword": lambda q, v, k: ranking.single(k, keyword=True),
        "vector": lambda q, v, k: ranking.single(v, keyword=False),
        "rrf (old hybrid)": lambda q, v, k: rrf(v, k),
    }
    for a in (0.3, 0.4, 0.5, 0.6):
        out[f"convex mm a={a}"] = lambda q, v, k, a=a: convex(v, k, a, "mm")
        out[f"convex tm a={a}"] = lambda q, v, k, a=a: convex(v, k, a, "tm")
    out["rrf wk=2"] = lambda q, v, k: rrf(v, k, wk=2.0)
    for a in (0.3, 0.4, 0.5, 0.6):
        out[f"product, fixed a={a}"] = lambda q, v, k, a=a: ranking.fuse(v, k, q, vector_weight=a)
    for a in (0.4, 0.5):
        out[f"product a={a} + gap confidence"] = lambda q, v, k, a=a: gap_weighted(q, v, k, a)
    for aw, ae in ((0.4, 0.2), (0.4, 0.25), (0.45, 0.25), (0.4, 0.3), (0.35, 0.2)):
        out[f"mm adaptive {aw}/{ae}"] = lambda q, v, k, aw=aw, ae=ae: convex(v, k, ae if ranking.looks_exact(q) else aw, "mm")
        out[f"mm adaptive {aw}/{ae} + gap"] = lambda q, v, k, aw=aw, ae=ae: convex(
            v, k, gap_alpha(ae if ranking.looks_exact(q) else aw, v, k), "mm"
        )
    if hasattr(ranking, "fuse"):
        out["product fuse"] = lambda q, v, k: ranking.fuse(v, k, q) if _takes_query() else ranking.fuse(v, k)
    if hasattr(ranking, "with_session_evidence"):
        out["product fuse + session evidence (search)"] = _with_session_evidence(lambda q, v, k: ranking.fuse(v, k, q))
    return out


def _gap(scores: list[float], at: int = 5) -> float:
    """How far the best score stands above the at-th, relative to the best (0: a flat list)."""
    if len(scores) < 2 or scores[0] <= 0:
        return 0.0
    return (scores[0] - scores[min(at, len(scores)) - 1]) / scores[0]


def gap_alpha(base: float, v: Sequence[StoredHit], k: Sequence[StoredHit]) -> float:
    gv = 0.5 + _gap([1 - h.distance for h in v])
    gk = 0.5 + _gap([-h.distance for h in k])
    return base * gv / (base * gv + (1 - base) * gk)


def gap_weighted(q: str, v: Sequence[StoredHit], k: Sequence[StoredHit], a: float) -> list[Candidate]:
    """The query's weight, moved toward the list whose top stands out more."""
    base = a if not ranking.looks_exact(q) else ranking.VECTOR_WEIGHT_EXACT
    gv = 0.5 + _gap([1 - h.distance for h in v])
    gk = 0.5 + _gap([-h.distance for h in k])
    weight = base * gv / (base * gv + (1 - base) * gk)
    return ranking.fuse(v, k, q, vector_weight=weight)


def _takes_query() -> bool:
    import inspect

    return len(inspect.signature(ranking.fuse).parameters) >= 3


def _minmax(scores: dict[str, float], floor: float | None = None) -> dict[str, float]:
    """Min-max normalised; with a floor, theoretical-min normalised (Bruch et al. TM2C2)."""
    if not scores:
        return {}
    lo = min(scores.values()) if floor is None else floor
    hi = max(scores.values())
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in scores.items()}


def convex(vector: Sequence[StoredHit], keyword: Sequence[StoredHit], alpha: float, norm: str) -> list[Candidate]:
    """alpha * vector + (1 - alpha) * keyword, each normalised; a list missing a chunk gives it 0."""
    cos = {h.id: 1.0 - h.distance for h in vector}
    bm = {h.id: -h.distance for h in keyword}
    nv = _minmax(cos, None if norm == "mm" else -1.0)
    nk = _minmax(bm, None if norm == "mm" else 0.0)
    found: dict[str, Candidate] = {}
    for rank, h in enumerate(vector, start=1):
        found[h.id] = Candidate(h, alpha * nv[h.id], vector_rank=rank)
    for rank, h in enumerate(keyword, start=1):
        c = found.setdefault(h.id, Candidate(h))
        c.keyword_rank = rank
        c.score += (1 - alpha) * nk[h.id]
    return sorted(found.values(), key=lambda c: -c.score)


def rrf(
    vector: Sequence[StoredHit], keyword: Sequence[StoredHit], k: int = 60, wv: float = 1.0, wk: float = 1.0
) -> list[Candidate]:
    found: dict[str, Candidate] = {}
    for rank, hit in enumerate(vector, start=1):
        found[hit.id] = Candidate(hit, wv / (k + rank), vector_rank=rank)
    for rank, hit in enumerate(keyword, start=1):
        c = found.setdefault(hit.id, Candidate(hit))
        c.keyword_rank = rank
        c.score += wk / (k + rank)
    return sorted(found.values(), key=lambda c: -c.score)


def compare(keep: Path, only: str | None, pooled: bool = False) -> None:
    rows = []
    for name, fusion in variants().items():
        if only and only not in name and name not in ("keyword", "vector", "rrf (old hybrid)"):
            continue
        lo = score_locomo(keep, fusion)
        ev = score_eval(keep, "eval", fusion, pooled)
        nm = score_eval(keep, "nearmiss", fusion)
        cells = [f"{lo.get(k, 0):.3f}" for k in ("R@1", "R@5", "R@10", "nDCG@10")]
        for table in (ev, nm):
            for style in ("paraphrase", "exact"):
                m = table.get(style, {})
                cells += [f"{m.get('recall@5', 0):.3f}", f"{m.get('nDCG@10', 0):.3f}"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("capture", "compare", "pool"))
    parser.add_argument("--out", type=Path, help="pool: the folder for one JSON file per fixture paraphrase")
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--only")
    parser.add_argument("--model-dir", type=Path, help="capture: another sentence-transformers model (as locomo.py's)")
    parser.add_argument("--e5", action="store_true", help="capture: multilingual-e5-small (as locomo.py's)")
    parser.add_argument("--pooled", action="store_true", help="compare: also count the fixture set's pooled judgments")
    parser.add_argument("--model", default="minilm", help="compare: the captures of this model (default %(default)s)")
    args = parser.parse_args()
    if args.action == "capture":
        served = quality.ServedModel.choose(False, args.model_dir, args.e5)
        with served.standin() as standin:  # locomo.py --keep keeps MiniLM's indexes under "minilm"
            capture(args.keep, standin.url, served.name, "minilm" if served.name == quality.MINILM else served.name)
    elif args.action == "pool":
        if args.out is None:
            parser.error("pool needs --out")
        print(f"{pool(args.keep / args.model, args.out)} candidates in {args.out}")
    else:
        print(
            "| variant | LoCoMo R@1 | R@5 | R@10 | nDCG@10 | eval para R@5 | nDCG | eval exact R@5 | nDCG | near para R@5 | nDCG | near exact R@5 | nDCG |"
        )
        print("|---|" + "---:|" * 12)
        compare(args.keep / args.model, args.only, args.pooled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
