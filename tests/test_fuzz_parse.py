"""Whatever a transcript holds, parsing and chunking it never raises.

Generated from the real fixtures: records cut short, bytes corrupted, fields of every
type, nesting 10,000 deep, lone surrogates, NUL bytes. Plus: a 50 MB line is skipped
without being held, and the chunker's token arithmetic equals encoding the joined text.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import DEEP, JUNK, SPECS, WRONG_VALUES, cut_short, insert, nested, paths, replace_at
from support.paths import FIXTURE_PROJECTS

from indexer import chunk, parse
from indexer.agents import claude_code
from indexer.agents.claude_code import parse_lines
from indexer.chunk import chunk_transcript
from indexer.parse import parse_file, read_lines
from indexer.sources import SourceFile, discover

pytestmark = pytest.mark.usefixtures("transcripts")  # they read the shared transcripts

FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOURCES = [
    SourceFile(Path("/fuzz/-p/s1.jsonl"), "-p/s1.jsonl", "s1", None, None, 0, 0),
    SourceFile(Path("/fuzz/-p/s1/subagents/agent-a1.jsonl"), "-p/s1/subagents/agent-a1.jsonl", "s1", "a1", "Explore", 0, 0),
]
LINE_CAP = 16_384  # bigger fixture lines only slow the examples down


def _fixture_lines() -> list[bytes]:
    lines = []
    for path in sorted(FIXTURE_PROJECTS.rglob("*.jsonl")):
        with path.open("rb") as fh:
            lines += [line.rstrip(b"\n") for line in fh if line.strip() and len(line) <= LINE_CAP]
    return lines


LINES = _fixture_lines()
RECORDS = [r for r in map(json.loads, LINES) if r.get("type") in ("user", "assistant")]


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    """A real user or assistant record with one to three values, anywhere in it, of a wrong type."""
    record = copy.deepcopy(draw(st.sampled_from(RECORDS)))
    for _ in range(draw(st.integers(1, 3))):
        record = replace_at(record, draw(st.sampled_from(list(paths(record)))), draw(WRONG_VALUES))
    return record


def _dumps(record: Any, compact: bool) -> bytes:
    # Compact is how Claude Code writes (and what the no-decode noise check reads); spaced is not.
    return json.dumps(record, separators=(",", ":") if compact else (", ", ": ")).encode()


REAL = st.sampled_from(LINES)
TRUNCATED = cut_short(REAL)
CORRUPTED = st.builds(insert, REAL, st.integers(0, 2**16), JUNK)
# Half an emoji, as a string cut at a UTF-16 index is written: valid JSON that UTF-8 cannot hold.
SURROGATES = REAL.map(
    lambda raw: raw.replace(b'"text":"', b'"text":"\\ud83d', 1).replace(b'"content":"', b'"content":"\\udc00 ', 1)
)
MUTATED = st.builds(_dumps, mutated_records(), st.booleans())
BLANK = st.sampled_from([b"", b"   ", b"\n", b"\r\n", b"\x00"])
ANY_LINE = st.one_of(REAL, TRUNCATED, CORRUPTED, SURROGATES, DEEP, MUTATED, BLANK, st.binary(max_size=64), st.none())


def _parse_and_chunk(source: SourceFile, lines: list[bytes | None], tool_output_chars: int) -> parse.Transcript:
    """Parse, check the counts add up, chunk with every spec; any exception fails the test."""
    transcript = parse_lines(source, enumerate(lines, start=1), tool_output_chars)
    stats = transcript.stats
    assert stats.lines == sum(1 for raw in lines if raw is None or raw.strip())
    assert stats.records + stats.malformed == stats.lines
    assert stats.oversized == lines.count(None)
    for message in transcript.messages:
        assert message.text.strip()
    for spec in SPECS:
        for piece in chunk_transcript(transcript, spec):
            # No lone surrogate reaches the embedder or the store.
            json.dumps([piece.text, piece.metadata], ensure_ascii=False).encode("utf-8")
    return transcript


@settings(FUZZ, max_examples=1200)
@given(lines=st.lists(ANY_LINE, max_size=12), source=st.sampled_from(SOURCES), tool_output_chars=st.sampled_from([0, 40, 1500]))
def test_corrupt_transcripts_never_raise(lines: list[bytes | None], source: SourceFile, tool_output_chars: int) -> None:
    _parse_and_chunk(source, lines, tool_output_chars)


@settings(FUZZ, max_examples=700)
@given(records=st.lists(mutated_records(), min_size=1, max_size=6), compact=st.booleans())
def test_wrong_types_in_any_field_of_real_records_never_raise(records: list[Any], compact: bool) -> None:
    transcript = _parse_and_chunk(SOURCES[0], [_dumps(r, compact) for r in records], 1500)
    assert transcript.stats.malformed == sum(not isinstance(r, dict) for r in records)


def test_lines_nested_10000_deep_are_counted_as_malformed() -> None:
    lines = [nested(10_000, kind) for kind in ("list", "dict", "record")]
    good = b'{"type":"user","uuid":"u1","message":{"content":"still here"}}'
    transcript = parse_lines(SOURCES[0], enumerate([*lines, good], start=1), 1500)
    assert transcript.stats.malformed == 3
    assert [m.text for m in transcript.messages] == ["still here"]


def test_a_lone_surrogate_is_replaced_not_fatal() -> None:
    line = b'{"type":"user","uuid":"u1","message":{"content":"cut emoji \\ud83d here"}}'
    transcript = parse_lines(SOURCES[0], [(1, line)], 1500)
    assert [m.text for m in transcript.messages] == ["cut emoji \ufffd here"]
    assert list(chunk_transcript(transcript, SPECS[0]))


NOISE = st.sampled_from([raw for raw in LINES if json.loads(raw).get("type") not in ("user", "assistant")])


@settings(FUZZ, max_examples=500)
@given(raw=st.one_of(NOISE, cut_short(NOISE), st.builds(insert, NOISE, st.integers(0, 2**16), JUNK), REAL, MUTATED))
def test_a_line_skipped_undecoded_as_noise_is_noise_when_decoded(raw: bytes) -> None:
    if claude_code._noise_type(raw):
        record = parse.decode(raw)
        assert not isinstance(record, dict) or record.get("type") not in (
            "user",
            "assistant",
            "queue-operation",
            *claude_code.TITLE_FIELDS,
        )
        queued = (
            isinstance(record, dict)
            and isinstance(record.get("attachment"), dict)
            and record["attachment"].get("type") == "queued_command"
        )
        assert not (queued and record.get("type") == "attachment")


def test_nested_noise_types_do_not_hide_a_message() -> None:
    """Only the top-level "type" counts, wherever a nested one appears; lines are padded past the skim size."""
    pad = "x" * claude_code._SKIM_MIN_BYTES
    lines = [
        {"message": {"type": "progress", "content": "first " + pad}, "type": "user", "uuid": "u1"},
        {"type": "user", "uuid": "u2", "message": {"content": [{"type": "text", "text": '"type":"progress" ' + pad}]}},
        {"toolUseResult": [{"type": "progress"}], "type": "user", "uuid": "u3", "message": {"content": "third " + pad}},
    ]
    raw = [json.dumps(line, separators=(",", ":")).encode() for line in lines]
    transcript = parse_lines(SOURCES[0], enumerate(raw, start=1), 1500)
    assert [m.uuid for m in transcript.messages] == ["u1", "u2", "u3"]
    assert transcript.stats.noise == 0


@settings(FUZZ, max_examples=250)
@given(
    lengths=st.lists(st.integers(0, 40), max_size=10),
    final_newline=st.booleans(),
    cap=st.integers(0, 24),
    piece=st.integers(2, 16),
)
def test_long_lines_are_skipped_and_line_numbers_stay_right(
    lengths: list[int], final_newline: bool, cap: int, piece: int
) -> None:
    """read_lines against splitting the bytes in memory, with pieces small enough to split lines."""
    lines = [b"%d:" % n + b"x" * length for n, length in enumerate(lengths, start=1)]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = [(n, line if len(line.rstrip(b"\n")) <= cap else None) for n, line in enumerate(io.BytesIO(data), start=1)]
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(parse, "_READ_PIECE", piece):
        path = Path(tmp) / "s.jsonl"
        path.write_bytes(data)
        assert list(read_lines(path, max_line_bytes=cap)) == expected


def test_a_50mb_line_is_skipped_without_being_held(tmp_path: Path) -> None:
    folder = tmp_path / "-p"
    folder.mkdir()
    path = folder / "big.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"type":"user","uuid":"u1","message":{"content":"before the big line"}}\n')
        fh.write(b'{"type":"user","uuid":"u2","message":{"content":"')
        for _ in range(50):
            fh.write(b"A" * 1_000_000)
        fh.write(b'"}}\n{"type":"user","uuid":"u3","message":{"content":"after the big line"}}\n')
    source = next(discover(tmp_path))
    tracemalloc.start()
    try:
        transcript = parse_file(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(m.text, m.line_start) for m in transcript.messages] == [("before the big line", 1), ("after the big line", 3)]
    assert (transcript.stats.oversized, transcript.stats.malformed, transcript.stats.lines) == (1, 1, 3)
    assert peak < 10 * 2**20  # about three 1 MiB read pieces, not the 50 MB line


# What the tokenizer's regex treats specially: contractions, digit runs, newlines, Unicode
# spaces and letters, a combining mark, an Arabic-Indic digit, an emoji.
ALPHABET = [
    *"aZ09 \n\r\t.,'!?-_/sdmtlvre", "ll", "'s", "'VE", "...", "123456",
    "\xe9", "\u4e2d", "\U0001f600", "\x85", "\u2028", "\xa0", "\x1c", "\u0301", "\u0661", "\u3000",
]  # fmt: skip
MESSY_TEXT = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)
# Rendered messages are stripped and non-empty; unstripped ones take the chunker's slow path.
TEXTS = st.one_of(MESSY_TEXT.map(str.strip), st.text(max_size=40).map(str.strip), MESSY_TEXT)


@settings(FUZZ, max_examples=600)
@given(texts=st.lists(TEXTS, min_size=1, max_size=5))
def test_chunker_token_arithmetic_equals_encoding_the_joined_text(texts: list[str]) -> None:
    """The chunker encodes each message once; the tokens and counts must be those of the old two passes."""
    enc = chunk.encoding()
    tokens, counts = chunk._encode_group(texts)
    assert tokens == enc.encode_ordinary(chunk.SEPARATOR.join(texts))
    assert counts == [len(enc.encode_ordinary(text)) for text in texts]
