"""A bigger Claude home made from the real transcripts, and the chunks a fresh index makes of it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from base import FIXTURES, SPEC

from indexer.chunk import Chunk, chunk_transcript
from indexer.config import Settings
from indexer.parse import parse_file
from indexer.sources import SourceFile, discover

_UUID = re.compile(rb"[0-9a-f]{8}(?=-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_UUID_TEXT = re.compile(r"[0-9a-f]{8}(?=-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


# -- a bigger Claude home from the real transcripts --------------------------------------------


def _renamed(data: bytes, copy: int) -> bytes:
    """data with the first 8 hex digits of every uuid XORed with a per-copy key (0: unchanged)."""
    if copy == 0:
        return data
    key = (copy * 0x9E3779B1) & 0xFFFFFFFF
    return _UUID.sub(lambda m: b"%08x" % (int(m.group(0), 16) ^ key), data)


def _renamed_name(name: str, copy: int) -> str:
    """A path part of copy `copy`: uuids renamed as in the records; agent-<id> files (not uuids) get a suffix."""
    if copy == 0:
        return name
    key = (copy * 0x9E3779B1) & 0xFFFFFFFF
    if name.startswith("agent-"):
        stem, dot, rest = name.partition(".")
        return f"{stem}-c{copy}{dot}{rest}"
    return _UUID_TEXT.sub(lambda m: f"{int(m.group(0), 16) ^ key:08x}", name)


def jsonl_bytes(projects: Path) -> int:
    return sum(s.size for s in discover(projects))


def build_home(target_bytes: int, into: Path, fixtures: Path = FIXTURES) -> Path:
    """A Claude home at into/ whose projects hold copies of the fixtures, >= target_bytes of JSONL.

    Each copy renames every uuid (file names, folders and records alike), so its sessions,
    messages and chunk ids are new. Whole project folders are copied until discover() finds
    target_bytes in the copy.
    """
    out = into / "projects"
    folders = sorted(p for p in fixtures.iterdir() if p.is_dir())
    copy = 0
    while True:
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    rel = path.relative_to(fixtures)
                    target = out.joinpath(*(_renamed_name(part, copy) for part in rel.parts))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(_renamed(path.read_bytes(), copy))
            if jsonl_bytes(out) >= target_bytes:
                return into
        copy += 1


def product_cleaner(settings: Settings) -> Any:
    """The text cleaner (redaction) a reindex with these settings applies while parsing, if the product has one."""
    from indexer.service import SessionSearch

    redactor = getattr(SessionSearch(settings), "redactor", None)
    return getattr(redactor, "redact_text", None)


def file_chunks(projects: Path, clean: Any = None) -> list[tuple[SourceFile, list[Chunk]]]:
    """Every transcript's chunks, as a fresh index's IndexRun makes them (clean: the product's cleaner)."""
    found = []
    for source in discover(projects):
        transcript = parse_file(source, SPEC.tool_output_chars, clean) if clean else parse_file(source, SPEC.tool_output_chars)
        found.append((source, list(chunk_transcript(transcript, SPEC))))
    return found


def embed_batches(files: Sequence[tuple[SourceFile, list[Chunk]]], batch_size: int) -> list[list[Chunk]]:
    """The embed requests IndexRun makes on a fresh index: batches fill across files, in file order."""
    flat = [c for _, chunks in files for c in chunks]
    return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]


def unique_ids(batch: Sequence[Chunk]) -> list[Chunk]:
    """One chunk per id, the later wins, as the store worker writes a batch."""
    return list({c.id: c for c in batch}.values())
