"""Fuzzing the Codex and Gemini CLI parsers as tests/test_fuzz_parse.py fuzzes Claude Code's:
truncated and corrupted lines, invalid UTF-8, NUL bytes, deep nesting, wrong types in every
field of real records, broken JSON documents. They never raise, count every line, and
never let a lone surrogate reach a chunk."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import DEEP, JUNK, SPECS, WRONG_VALUES, cut_short, insert, paths, replace_at
from support.paths import FIXTURE_HOME

from indexer.agents import codex, gemini_cli
from indexer.chunk import chunk_transcript
from indexer.parse import Transcript
from indexer.sources import SourceFile

pytestmark = pytest.mark.usefixtures("transcripts")  # they read the shared transcripts

FUZZ = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
AGENT_FIXTURES = FIXTURE_HOME.parent  # beside claude-home, wherever SESSION_SEARCH_FIXTURES puts it
CODEX_LINES = [
    line.rstrip(b"\n")
    for path in sorted((AGENT_FIXTURES / "codex-home").rglob("*.jsonl"))
    for line in path.open("rb")
    if line.strip()
]
CODEX_RECORDS = [json.loads(line) for line in CODEX_LINES]
GEMINI_DOCUMENTS = [json.loads(p.read_text()) for p in sorted((AGENT_FIXTURES / "gemini-home").rglob("*.json"))]
GEMINI_LINES = [
    line.rstrip(b"\n")
    for path in sorted((AGENT_FIXTURES / "gemini-home").rglob("*.jsonl"))
    for line in path.open("rb")
    if line.strip()
]
CODEX_SOURCE = SourceFile(
    Path("/fuzz/sessions/rollout-x.jsonl"), "codex:sessions/rollout-x.jsonl", "x", None, None, 0, 0, "codex"
)


@st.composite
def _mutated(draw: st.DrawFn, records: list[Any]) -> Any:
    """A real record with one to three values, anywhere in it, of a wrong type."""
    record = copy.deepcopy(draw(st.sampled_from(records)))
    for _ in range(draw(st.integers(1, 3))):
        record = replace_at(record, draw(st.sampled_from(list(paths(record)))), draw(WRONG_VALUES))
    return record


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _line_strategy(lines: list[bytes], records: list[Any]) -> st.SearchStrategy[bytes | None]:
    real = st.sampled_from(lines)
    return st.one_of(
        real, cut_short(real), st.builds(insert, real, st.integers(0, 2**16), JUNK), DEEP,
        _mutated(records).map(_dumps), real.map(lambda raw: raw.replace(b'"text":"', b'"text":"\\ud83d', 1)),
        st.binary(max_size=64), st.sampled_from([b"", b"  ", b"\x00"]), st.none(),
    )  # fmt: skip


def _check(transcript: Transcript) -> None:
    for message in transcript.messages:
        assert message.text.strip()
    for spec in SPECS:
        for piece in chunk_transcript(transcript, spec):
            json.dumps([piece.text, piece.metadata], ensure_ascii=False).encode("utf-8")  # no lone surrogate


@settings(FUZZ, max_examples=800)
@given(lines=st.lists(_line_strategy(CODEX_LINES, CODEX_RECORDS), max_size=12), tool_output_chars=st.sampled_from([0, 40, 1500]))
def test_corrupt_codex_rollouts_never_raise(lines: list[bytes | None], tool_output_chars: int) -> None:
    transcript = codex.parse_lines(CODEX_SOURCE, enumerate(lines, start=1), tool_output_chars)
    stats = transcript.stats
    assert stats.lines == sum(1 for raw in lines if raw is None or (raw and not raw.isspace()))
    assert stats.records + stats.malformed == stats.lines
    _check(transcript)


def _gemini_source(folder: Path, name: str, data: bytes) -> SourceFile:
    chats = folder / "tmp" / ("a" * 64) / "chats"
    chats.mkdir(parents=True, exist_ok=True)
    path = chats / name
    path.write_bytes(data)
    source = gemini_cli.describe(path, folder / "tmp")
    assert source is not None
    return source


@settings(FUZZ, max_examples=300)
@given(lines=st.lists(_line_strategy(GEMINI_LINES, [json.loads(line) for line in GEMINI_LINES]), max_size=10))
def test_corrupt_gemini_jsonl_chats_never_raise(lines: list[bytes | None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = b"\n".join(b"x" * 40 if raw is None else raw for raw in lines)
        transcript = gemini_cli.parse(_gemini_source(Path(tmp), "session-2026-01-01T00-00-abcd1234.jsonl", data), 1500)
        assert transcript.stats.records + transcript.stats.malformed == transcript.stats.lines
        _check(transcript)


def _document_messages() -> list[Any]:
    return [m for document in GEMINI_DOCUMENTS for m in document["messages"]]


@st.composite
def _gemini_documents(draw: st.DrawFn) -> bytes:
    """A chat document whose header, messages and tool calls carry wrong types, or bytes that are no JSON."""
    document = copy.deepcopy(draw(st.sampled_from(GEMINI_DOCUMENTS)))
    document["messages"] = copy.deepcopy(
        draw(st.lists(_mutated(_document_messages()) | st.sampled_from(_document_messages()), max_size=6))
    )
    document = (
        replace_at(document, draw(st.sampled_from(list(paths(document)))), draw(WRONG_VALUES))
        if draw(st.booleans())
        else document
    )
    raw = json.dumps(document, indent=draw(st.sampled_from([None, 2]))).encode()
    damage = draw(st.sampled_from(["none", "cut", "junk", "surrogate"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "junk":
        raw = insert(raw, draw(st.integers(0, 2**16)), draw(JUNK))
    elif damage == "surrogate":
        raw = raw.replace(b'"content": "', b'"content": "\\udc00', 1).replace(b'"content":"', b'"content":"\\udc00', 1)
    return raw


@settings(FUZZ, max_examples=300)
@given(raw=_gemini_documents())
def test_corrupt_gemini_json_chats_never_raise(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        transcript = gemini_cli.parse(_gemini_source(Path(tmp), "session-2026-01-01T00-00-abcd1234.json", raw), 1500)
        assert transcript.stats.malformed in (0, 1)
        _check(transcript)


def test_a_gemini_document_nested_10000_deep_is_malformed(tmp_path: Path) -> None:
    raw = b'{"sessionId":"s","messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    transcript = gemini_cli.parse(_gemini_source(tmp_path, "session-x-abcd1234.json", raw), 1500)
    assert transcript.messages == [] and transcript.stats.malformed == 1
