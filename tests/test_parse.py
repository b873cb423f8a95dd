"""The parser over every real transcript layout, and over broken input."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest
from support.home import write_session
from support.paths import FIXTURE_PROJECTS

from indexer.chunk import TITLE_PREFIX, ChunkerSpec, chunk_transcript, count_tokens
from indexer.parse import parse_file
from indexer.sources import SourceFile, discover

pytestmark = pytest.mark.usefixtures("transcripts")  # they read the shared transcripts

SPEC = ChunkerSpec("exchange", 400, 64, 1500)
ALL_SOURCES = list(discover(FIXTURE_PROJECTS))
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{200,}")


def source_named(name: str) -> SourceFile:
    return next(s for s in ALL_SOURCES if s.path.name == name)


def roles(name: str) -> dict[str, int]:
    return dict(collections.Counter(m.role for m in parse_file(source_named(name)).messages))


def test_every_fixture_file_is_found_except_compaction_runs() -> None:
    on_disk = {p for p in FIXTURE_PROJECTS.rglob("*.jsonl") if not p.name.startswith("agent-acompact-")}
    assert {s.path for s in ALL_SOURCES} == on_disk
    assert len(on_disk) == 36


@pytest.mark.parametrize("source", ALL_SOURCES, ids=lambda s: s.rel_path)
def test_every_fixture_parses_and_chunks_without_error(source: SourceFile) -> None:
    transcript = parse_file(source)
    assert transcript.stats.malformed == 0
    for chunk in chunk_transcript(transcript, SPEC):
        assert chunk.text.strip()
        # The session's title opens its first chunk, on top of the window.
        title = chunk.text.split("\n", 1)[0] if chunk.text.startswith(TITLE_PREFIX) else ""
        assert count_tokens(chunk.text) <= SPEC.window_tokens + count_tokens(title) + 1


# Counted by hand from the raw lines (see the test names): prompts typed by the person,
# assistant replies after merging lines that share message.id, and tool results with text.
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # 29 lines: 1 prompt, 1 isMeta prompt (skipped), 7 message ids over 15 assistant lines,
        # 12 tool results of which one is an empty string.
        ("1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl", {"user": 1, "assistant": 7, "tool": 11}),
        # 7 lines: 2 prompts, 4 assistant lines with one split id, 1 tool result.
        ("67a8478e-78dc-44ab-82ea-f65c8ead85f6.jsonl", {"user": 2, "assistant": 3, "tool": 1}),
        # 15 lines: 1 prompt, 5 assistant lines of one id (a progress line between them),
        # 2 tool errors, an interruption marker and snapshot/progress/system noise.
        ("55604662-cf2a-4331-851a-ec234028f8ca.jsonl", {"user": 1, "assistant": 1, "tool": 2}),
    ],
)
def test_hand_counted_files_give_the_expected_messages(name: str, expected: dict[str, int]) -> None:
    assert roles(name) == expected


def test_assistant_lines_sharing_a_message_id_become_one_message() -> None:
    messages = parse_file(source_named("1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl")).messages
    merged = next(m for m in messages if m.line_start == 6)
    assert merged.line_end == 10
    assert len(merged.tools) == 5
    assert merged.text.count("[") >= 5


def test_tool_errors_are_kept_even_without_output_cap() -> None:
    transcript = parse_file(source_named("55604662-cf2a-4331-851a-ec234028f8ca.jsonl"), tool_output_chars=0)
    errors = [m for m in transcript.messages if m.role == "tool"]
    assert len(errors) == 2 and all(" error]" in m.text for m in errors)


def test_compaction_summary_is_kept_and_marked() -> None:
    source = source_named("258c7280-ae70-4798-800f-63464d01a85d.jsonl")
    chunks = list(chunk_transcript(parse_file(source), SPEC))
    summaries = [c for c in chunks if c.metadata["kind"] == "compaction_summary"]
    assert summaries and "continued from a previous conversation" in summaries[0].text


@pytest.mark.parametrize(
    ("name", "agent_id"),
    [
        ("agent-a881341.jsonl", "a881341"),  # 2.1.x <session>/subagents/
        ("agent-c8d9b115.jsonl", "c8d9b115"),  # 2.0.x flat beside the session
        ("agent-a36efb2a1231c41e2.jsonl", "a36efb2a1231c41e2"),  # 2.1.x with meta.json
    ],
)
def test_subagent_transcripts_are_tagged_with_their_agent(name: str, agent_id: str) -> None:
    source = source_named(name)
    chunks = list(chunk_transcript(parse_file(source), SPEC))
    assert chunks
    for chunk in chunks:
        assert chunk.metadata["is_sidechain"] is True
        assert chunk.metadata["agent_id"] == agent_id
    assert not chunks[0].metadata["session_id"].startswith("agent-")


def test_subagent_in_session_folder_belongs_to_its_parent_session() -> None:
    chunk = next(chunk_transcript(parse_file(source_named("agent-a881341.jsonl")), SPEC))
    assert chunk.metadata["session_id"] == "258c7280-ae70-4798-800f-63464d01a85d"
    assert source_named("agent-a36efb2a1231c41e2.jsonl").agent_type == "general-purpose"


def test_base64_images_never_reach_a_chunk() -> None:
    # These files carry a pasted PNG (1 MB line), a 528 KB image line and an image message.
    for name in (
        "0d3a8e6f-290f-4105-a327-a2496e5e2a83.jsonl",
        "4379d1bf-ccb1-414e-a856-9791b73f3af2.jsonl",
        "15eaa3ee-d16e-4fdc-b5b5-ed52c42219bb.jsonl",
    ):
        raw = source_named(name).path.read_text(encoding="utf-8")
        assert BASE64_RUN.search(raw), f"{name} should hold base64 data"
    for source in ALL_SOURCES:
        for chunk in chunk_transcript(parse_file(source), SPEC):
            assert not BASE64_RUN.search(chunk.text), f"base64 in a chunk of {source.rel_path}"
            assert "iVBORw0KGgo" not in chunk.text


def test_noise_records_do_not_reach_chunks() -> None:
    source = source_named("258c7280-ae70-4798-800f-63464d01a85d.jsonl")  # 1,333 progress lines
    transcript = parse_file(source)
    assert transcript.stats.noise >= 1333
    text = "\n".join(c.text for c in chunk_transcript(transcript, SPEC))
    assert "hook_progress" not in text and "file-history-snapshot" not in text


def test_chunk_ids_are_deterministic() -> None:
    source = source_named("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    first = [(c.id, c.content_hash) for c in chunk_transcript(parse_file(source), SPEC)]
    again = [(c.id, c.content_hash) for c in chunk_transcript(parse_file(source), SPEC)]
    assert first == again and len({i for i, _ in first}) == len(first)


def test_long_exchanges_are_windowed_with_overlap() -> None:
    source = source_named("agent-a2271d1.jsonl")  # one prompt, 35 replies and results
    chunks = list(chunk_transcript(parse_file(source), SPEC))
    assert len(chunks) > 3
    assert [c.metadata["window"] for c in chunks] == list(range(len(chunks)))
    tail = chunks[0].text[-80:]
    assert tail[:40] in chunks[1].text  # the overlap repeats the end of the previous window


def test_message_chunker_gives_one_chunk_per_short_message() -> None:
    source = source_named("67a8478e-78dc-44ab-82ea-f65c8ead85f6.jsonl")
    chunks = list(chunk_transcript(parse_file(source), ChunkerSpec("message", 400, 64, 1500)))
    kinds = collections.Counter(c.metadata["kind"] for c in chunks)
    assert kinds == {"prompt": 2, "answer": 3, "tool_output": 1}


def test_malformed_half_written_and_non_utf8_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    good = {"type": "user", "uuid": "u1", "sessionId": "s1", "message": {"role": "user", "content": "hello there"}}
    path = write_session(tmp_path, "/p", "s1", [good, "{not json", "[1, 2]", '{"type": "user", "uuid": "u2", "mess'])
    with path.open("ab") as fh:
        fh.write(b'{"type": "user", "message": {"content": "bad \xff\xfe bytes"}}\n')
    source = next(discover(tmp_path))
    transcript = parse_file(source)
    assert transcript.stats.malformed == 4
    assert [m.text for m in transcript.messages] == ["hello there"]


def test_empty_and_vanished_files_give_no_messages(tmp_path: Path) -> None:
    path = write_session(tmp_path, "/p", "empty", [])
    path.write_bytes(b"")
    source = next(discover(tmp_path))
    assert parse_file(source).messages == []
    path.unlink()
    assert parse_file(source).messages == []


def test_wrong_types_in_fields_do_not_crash(tmp_path: Path) -> None:
    records = [
        {"type": "user", "uuid": 5, "message": "not a dict"},
        {"type": "assistant", "message": {"id": ["x"], "content": [None, 3, {"type": "tool_use", "input": "str"}]}},
        {"type": "user", "message": {"content": [{"type": "tool_result", "content": {"a": 1}, "is_error": True}]}},
        {"type": "user", "isCompactSummary": True, "message": {"content": None}},
    ]
    write_session(tmp_path, "/p", "odd", records)
    transcript = parse_file(next(discover(tmp_path)))
    assert transcript.stats.malformed == 0
    assert [m.role for m in transcript.messages] == ["assistant", "tool"]
