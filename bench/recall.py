"""The recall hook's relevance, cost and speed, per similarity threshold and margin, on two data sets.

    PYTHONPATH=$PWD /work/main/.venv-bench/bin/python bench/recall.py quality [--keep /tmp/recall-locomo] [--answers F] [--json]
    PYTHONPATH=$PWD /work/main/.venv-bench/bin/python bench/recall.py latency [--runs 30]

`quality` asks recall's own search (indexer.recall: the prompt as a vector query, the
current session left out, at most three hits at or above the threshold, none when the best
stands less than the margin above the fifth, the block the hook prints) for related and unrelated prompts on each data set, with all-MiniLM-L6-v2 served by
the stand-in (or its hashing vectors with --hashing):

- fixtures: the shared transcripts (../shared/fixtures/claude-home). Related: the 59
  evaluation questions (bench/eval/queries.jsonl); right = a quoted exchange spans a judged
  line. Unrelated: UNRELATED (20 coding prompts written for this bench) and every 5th LoCoMo
  question (chit-chat about people's lives, asked of a coding history).
- locomo: each LoCoMo conversation converted and indexed as bench/locomo.py does. The
  current session is the conversation's last one (excluded, as the hook excludes the session
  the prompt is typed in). Related: its questions with evidence outside the current session;
  right = a quoted exchange comes from an evidence session (and, stricter, spans an evidence
  turn). Unrelated: the next conversation's questions (other people, other lives) and UNRELATED.

Per threshold: the share of related prompts given the right exchange (recall), the share of
unrelated prompts given anything, precision (of all prompts given context, the share given
a right one), and what is injected when something is: characters and cl100k tokens,
median and p95.

`latency` times `session-search hook UserPromptSubmit` as a subprocess (interpreter start
included) over the fixture index (the stand-in's hashing vectors, so the stand-in answers at
once): through a shared searcher already running (warm) with Ollama healthy, slow (30 s per
request, past any deadline) and down; with no searcher running (cold: the hook starts one
and waits for it until its deadline); and searching in the hook process
(SESSION_SEARCH_SHARED_SEARCHER=0) with Ollama healthy, slow, down, and healthy with the
deadline lifted (what the whole search costs): p50, p95, how many runs printed a block, how
many prompts were long enough to recall anything (recall skips those under 3 words), and the
machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import locomo  # noqa: E402
from quality import DEFAULT_FIXTURES, DEFAULT_QUERIES, Span, build_settings, covers, load_queries  # noqa: E402
from support.ollama_standin import MINILM, OllamaStandIn, minilm_backend  # noqa: E402

from indexer.chunk import count_tokens  # noqa: E402
from indexer.config import Settings  # noqa: E402
from indexer.models import SearchHit  # noqa: E402
from indexer.recall import context, recall_request, relevant  # noqa: E402
from indexer.searcher_client import SearcherPaths  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
MARGINS = (0.0, 0.05, 0.1, 0.15)  # recall's margin gate (0: off); the default is Settings.recall_min_margin
LOCOMO_AS_UNRELATED_EVERY = 5
UNRELATED = [
    "write a python function that merges two sorted lists",
    "add a dark mode toggle to the settings page using css variables",
    "why is my rust borrow checker complaining about a mutable reference in this loop",
    "set up a github actions workflow that runs pytest on python 3.12",
    "convert this callback based node code to async await",
    "explain the difference between a left join and an inner join in postgres",
    "create a dockerfile for a flask app with gunicorn",
    "refactor this java class to use the builder pattern",
    "how do I debounce a search input in react",
    "write unit tests for the date parsing helper in utils.ts",
    "the kubernetes pod keeps crashing with OOMKilled, how do I raise the memory limit",
    "implement binary search over a rotated sorted array in go",
    "add pagination to the REST endpoint that lists invoices",
    "what is the time complexity of heapify",
    "rename the variable userData to profile across the whole module",
    "set up eslint and prettier for a typescript monorepo",
    "write a bash script that backs up a postgres database every night",
    "parse a csv file with pandas and drop rows with missing prices",
    "make the navbar sticky on mobile safari",
    "generate a migration that adds an index on orders.created_at",
]


@dataclass(frozen=True, slots=True)
class Asked:
    """One prompt's candidates as recall's search returned them, and which of them answer it."""

    group: str  # "related", or the name of an unrelated group
    current_session: str
    hits: tuple[SearchHit, ...]
    right: frozenset[str]  # chunk ids of hits that answer the prompt (empty for unrelated prompts)
    exact: frozenset[str]  # stricter: chunk ids of hits that hold the answer's own line


async def candidates(index: SessionSearch, prompt: str) -> list[SearchHit]:
    request = recall_request(prompt)
    return (await index.search(request)).results if request else []


# --------------------------------------------------------------------------- the data sets


async def ask_fixtures(settings: Settings, conversations: Sequence[locomo.Conversation]) -> list[Asked]:
    questions = load_queries(DEFAULT_QUERIES)
    chit_chat = [q.question for c in conversations for q in c.questions][::LOCOMO_AS_UNRELATED_EVERY]
    async with SessionSearch(settings) as index:
        await index.reindex()
        asked = []
        for query in questions:
            hits = await candidates(index, query.query)
            right = frozenset(
                h.chunk_id for h in hits if any(covers(Span(h.source_path, h.line_start, h.line_end), t) for t in query.relevant)
            )
            asked.append(Asked("related", "none", tuple(hits), right, right))
        for group, prompts in (("coding", UNRELATED), ("locomo questions", chit_chat)):
            for prompt in prompts:
                asked.append(Asked(group, "none", tuple(await candidates(index, prompt)), frozenset(), frozenset()))
        return asked


async def ask_conversation(
    conversation: locomo.Conversation, other: locomo.Conversation, settings: Settings, converted: locomo.Converted
) -> list[Asked]:
    """The conversation's own questions (related) and another's plus UNRELATED (unrelated), from its index."""
    number_of = converted.session_numbers
    last = max(number_of.values())
    current = next(sid for sid, n in number_of.items() if n == last)
    async with SessionSearch(settings) as index:
        await index.reindex()
        asked = []
        for question in conversation.questions:
            evidence = question.sessions - {last}
            if not evidence:
                continue  # nothing to recall: no evidence, or all of it in the current session
            hits = await candidates(index, question.question)
            right = frozenset(h.chunk_id for h in hits if number_of.get(h.session_id) in evidence)
            lines = [converted.turn_lines[d] for d in question.evidence if d in converted.turn_lines]
            exact = frozenset(
                h.chunk_id
                for h in hits
                if any(Path(h.source_path).name == f and h.line_start <= n <= h.line_end for f, n in lines)
            )
            asked.append(Asked("related", current, tuple(hits), right, exact))
        for group, prompts in (("other conversation", [q.question for q in other.questions]), ("coding", UNRELATED)):
            for prompt in prompts:
                asked.append(Asked(group, current, tuple(await candidates(index, prompt)), frozenset(), frozenset()))
        return asked


def ask_locomo(conversations: Sequence[locomo.Conversation], keep: Path, standin_url: str) -> list[Asked]:
    asked: list[Asked] = []
    for i, conversation in enumerate(conversations):
        where = keep / conversation.sample_id
        converted = locomo.prepare(conversation, where)
        settings = build_settings(standin_url, converted.claude_home, where / "data")
        other = conversations[(i + 1) % len(conversations)]
        started = time.perf_counter()
        asked += asyncio.run(ask_conversation(conversation, other, settings, converted))
        print(f"{conversation.sample_id}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return asked


# --------------------------------------------------------------------------- scoring


def percentile(values: Sequence[int] | Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0


def score(asked: Sequence[Asked], threshold: float, margin: float = 0.0) -> dict[str, object]:
    """One row: what recall would inject at this threshold and margin, and how right it is."""
    shown = [relevant(a.hits, a.current_session, threshold, margin) for a in asked]
    related = [(a, s) for a, s in zip(asked, shown, strict=True) if a.group == "related"]
    unrelated = [(a, s) for a, s in zip(asked, shown, strict=True) if a.group != "related"]

    def share(pairs: list[tuple[Asked, list[SearchHit]]], test: Callable[[Asked, list[SearchHit]], bool]) -> float:
        return round(sum(test(a, s) for a, s in pairs) / len(pairs), 3) if pairs else 0.0

    right = sum(any(h.chunk_id in a.right for h in s) for a, s in related)
    given = sum(bool(s) for s in shown)
    blocks = [b for s in shown if (b := context(s))]
    chars = [len(b) for b in blocks]
    tokens = [count_tokens(b) for b in blocks]
    row: dict[str, object] = {
        "threshold": threshold,
        "margin": margin,
        "related_right": share(related, lambda a, s: any(h.chunk_id in a.right for h in s)),
        "related_right_exchange": share(related, lambda a, s: any(h.chunk_id in a.exact for h in s)),
        "related_given": share(related, lambda a, s: bool(s)),
        "unrelated_given": share(unrelated, lambda a, s: bool(s)),
        "precision": round(right / given, 3) if given else 1.0,
        "injected_share": round(given / len(asked), 3),
        "chars_p50": int(statistics.median(chars)) if chars else 0,
        "chars_p95": percentile(chars, 0.95),
        "tokens_p50": int(statistics.median(tokens)) if tokens else 0,
        "tokens_p95": percentile(tokens, 0.95),
    }
    for group in sorted({a.group for a, _ in unrelated}):
        row[f"unrelated_given[{group}]"] = share([(a, s) for a, s in unrelated if a.group == group], lambda a, s: bool(s))
    return row


def table(name: str, asked: Sequence[Asked]) -> str:
    groups = {a.group: sum(1 for b in asked if b.group == a.group) for a in asked}
    lines = [
        f"### {name}: " + ", ".join(f"{n} {g}" for g, n in groups.items()),
        "",
        "| margin | threshold | related given the right session | … the right exchange | related given anything | unrelated given anything | precision | chars p50/p95 | tokens p50/p95 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for margin, threshold in itertools.product(MARGINS, THRESHOLDS):
        r = score(asked, threshold, margin)
        lines.append(
            f"| {margin:.2f} | {threshold:.2f} | {r['related_right']:.3f} | {r['related_right_exchange']:.3f} | {r['related_given']:.3f} | "
            f"{r['unrelated_given']:.3f} | {r['precision']:.3f} | {r['chars_p50']}/{r['chars_p95']} | {r['tokens_p50']}/{r['tokens_p95']} |"
        )
    return "\n".join(lines) + "\n"


def ask_both(args: argparse.Namespace) -> dict[str, list[Asked]]:
    conversations = locomo.load()[: args.conversations]
    real = {} if args.hashing else {MINILM: minilm_backend()}
    with OllamaStandIn(real_models=real) as standin, tempfile.TemporaryDirectory(prefix="ss-recall-") as tmp:
        keep = (args.keep / ("hashing" if args.hashing else "minilm")) if args.keep else Path(tmp)
        return {
            "fixtures": asyncio.run(
                ask_fixtures(build_settings(standin.url, DEFAULT_FIXTURES, Path(tmp) / "fixtures"), conversations)
            ),
            "locomo": ask_locomo(conversations, keep, standin.url),
        }


def run_quality(args: argparse.Namespace) -> int:
    if args.answers and args.answers.exists():
        sets = pickle.loads(args.answers.read_bytes())  # the searches of an earlier run, scored again
    else:
        sets = ask_both(args)
        if args.answers:
            args.answers.write_bytes(pickle.dumps(sets))
    if args.json:
        for name, asked in sets.items():
            for margin, threshold in itertools.product(MARGINS, THRESHOLDS):
                print(json.dumps({"set": name} | score(asked, threshold, margin)))
    else:
        backend = "the stand-in's hashing vectors" if args.hashing else "all-MiniLM-L6-v2 via the stand-in"
        print(f"## Recall per threshold ({backend})\n")
        for name, asked in sets.items():
            print(table(name, asked))
    return 0


# --------------------------------------------------------------------------- latency


SHARED_CASES = ("warm", "warm-slow", "warm-down", "cold")  # through the shared searcher (the default); the rest in-process
ALL_CASES = "warm,warm-slow,warm-down,cold,healthy,slow,down,unbounded"


def hook_seconds(
    env: dict[str, str], prompts: Sequence[str], runs: int, before_each: Callable[[], None] = lambda: None
) -> tuple[list[float], int]:
    """Each run's seconds, and how many runs printed a block (the rest printed nothing)."""
    command = [sys.executable, "-c", "import sys; from indexer.cli import main; sys.exit(main())", "hook", "UserPromptSubmit"]
    seconds, answered = [], 0
    for i in range(runs):
        before_each()
        payload = json.dumps({"session_id": "none", "prompt": prompts[i % len(prompts)], "hook_event_name": "UserPromptSubmit"})
        started = time.monotonic()
        proc = subprocess.run(command, input=payload, capture_output=True, text=True, env=env, timeout=60, check=False)
        seconds.append(time.monotonic() - started)
        if proc.returncode != 0 or proc.stderr:
            raise SystemExit(f"the hook failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        if proc.stdout:
            answer = json.loads(proc.stdout)
            assert len(answer["hookSpecificOutput"]["additionalContext"]) <= 2000
            answered += 1
    return seconds, answered


def searcher_pids(data_dir: Path) -> list[int]:
    """The shared searchers living on this data dir (one per settings key)."""
    locks = data_dir.glob("searcher-*.lock")
    found = (
        SearcherPaths(lock.with_suffix(".sock"), lock, lock.with_suffix(".start"), data_dir / "searcher.log").holder()
        for lock in locks
    )
    return [pid for pid in found if pid is not None]


def listening(data_dir: Path) -> bool:
    """Whether a shared searcher accepts connections on this data dir (a killed one leaves its socket file)."""
    for path in data_dir.glob("searcher-*.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return True
            except OSError:
                continue
    return False


def wait_for(predicate: Callable[[], bool], what: str, data_dir: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"{name}: ...{(data_dir / name).read_text()[-1500:]}"
                for name in ("hooks.log", "searcher.log")
                if (data_dir / name).exists()
            )
            raise SystemExit(f"{what} within {timeout_s:g} s: no\n{logs}")
        time.sleep(0.05)


def stop_searchers(data_dir: Path) -> None:
    for pid in searcher_pids(data_dir):
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not searcher_pids(data_dir), "the shared searchers exited", data_dir)


def run_latency(args: argparse.Namespace) -> int:
    prompts = [q.query for q in load_queries(DEFAULT_QUERIES)] + UNRELATED
    with OllamaStandIn() as standin, tempfile.TemporaryDirectory(prefix="ss-recall-") as tmp:
        settings = build_settings(standin.url, DEFAULT_FIXTURES, Path(tmp))

        async def build() -> None:
            async with SessionSearch(settings) as index:
                await index.reindex()

        asyncio.run(build())
        env = {
            **os.environ,
            "OLLAMA_HOST": settings.ollama_host,
            "SESSION_SEARCH_CLAUDE_DIR": str(settings.claude_dir),
            "SESSION_SEARCH_DATA_DIR": str(settings.data_dir),
            "SESSION_SEARCH_MODEL": MINILM,
            "SESSION_SEARCH_RECALL": "1",
            "SESSION_SEARCH_RECALL_MIN_SIMILARITY": "0",
            "PYTHONPATH": str(ROOT),
        }  # 0: every healthy run prints a block
        in_process = {**env, "SESSION_SEARCH_SHARED_SEARCHER": "0"}
        data = settings.data_dir
        recallable = [p for p in prompts if recall_request(p) is not None]
        hook_seconds({**in_process, "SESSION_SEARCH_RECALL_DEADLINE": "30"}, prompts, 2)  # warm the page cache
        rows = {}
        try:
            for case in args.cases.split(","):
                standin.reset()
                stop_searchers(settings.data_dir)
                before_each: Callable[[], None] = lambda: None  # noqa: E731
                case_prompts = prompts
                case_env = env if case in SHARED_CASES else in_process
                if case == "unbounded":
                    case_env = {**case_env, "SESSION_SEARCH_RECALL_DEADLINE": "30"}
                if case.startswith("warm"):  # a first prompt (no deadline to speak of) starts the searcher the runs find
                    hook_seconds({**env, "SESSION_SEARCH_RECALL_DEADLINE": "30"}, recallable, 1)
                    wait_for(lambda: listening(data), "the searcher listens", data)
                elif case == "cold":  # every run finds none and starts one; it listens before the next run

                    def before_each() -> None:
                        wait_for(lambda: listening(data), "the searcher listens", data)
                        stop_searchers(data)

                    case_prompts = recallable  # a prompt too short to recall starts no searcher
                    hook_seconds(env, case_prompts, 1)  # so that each timed run follows one that started a searcher

                if case.endswith("slow"):
                    standin.delay_s = 30.0
                elif case.endswith("down"):
                    standin.down()
                load_before = os.getloadavg()[0]
                seconds, answered = hook_seconds(case_env, case_prompts, args.runs, before_each)
                seconds.sort()
                rows[case] = {
                    "runs": args.runs,
                    "answered": answered,
                    "recallable": sum(recall_request(case_prompts[i % len(case_prompts)]) is not None for i in range(args.runs)),
                    "p50_s": round(statistics.median(seconds), 3),
                    "p95_s": round(percentile(seconds, 0.95), 3),
                    "max_s": round(seconds[-1], 3),
                    "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                }
                print(json.dumps({"case": case} | rows[case]), flush=True)
        finally:
            stop_searchers(settings.data_dir)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    quality = commands.add_parser("quality", help="relevance and cost per threshold, fixtures and LoCoMo")
    quality.add_argument("--hashing", action="store_true", help="the stand-in's lexical vectors instead of MiniLM")
    quality.add_argument("--keep", type=Path, help="keep LoCoMo's indexed conversations here (reused next time)")
    quality.add_argument("--conversations", type=int, help="only the first N LoCoMo conversations")
    quality.add_argument("--json", action="store_true", help="one JSON row per set, margin and threshold")
    quality.add_argument(
        "--answers", type=Path, help="save every search's hits here, or score the ones saved (no search) when it exists"
    )
    latency = commands.add_parser(
        "latency", help="the hook's time as a subprocess, searcher warm or cold, Ollama healthy, slow and down"
    )
    latency.add_argument("--runs", type=int, default=30)
    latency.add_argument(
        "--cases",
        default=ALL_CASES,
        help="warm*: a shared searcher already runs; cold: none runs (the hook starts one); the rest search in the hook "
        "process (SESSION_SEARCH_SHARED_SEARCHER=0); unbounded: in-process with a 30 s deadline (default %(default)s)",
    )
    args = parser.parse_args()
    return run_quality(args) if args.command == "quality" else run_latency(args)


if __name__ == "__main__":
    sys.exit(main())
