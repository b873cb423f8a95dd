"""Parse one Claude Code transcript into messages, leniently (REFERENCE §1).

Kept: what the person typed, the assistant's text, tool calls (command, path and
description only), tool results (capped text; errors always kept) and compaction
summaries. Skipped: progress, snapshots, queue, attachments, system notices, isMeta
text, thinking, base64 images and documents. A line that is not a JSON object, is
not UTF-8, nests too deeply or is longer than MAX_LINE_BYTES is counted as malformed
and skipped; parsing goes on with the next line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson  # decodes these lines about 2.5x faster than json

from indexer.sources import SourceFile

Role = Literal["user", "assistant", "tool", "summary"]
Cleaner = Callable[[str], str]

TITLE_TYPES = frozenset({"summary", "custom-title", "ai-title"})
TOOL_INPUT_KEYS = ("description", "command", "file_path", "path", "pattern", "url", "query", "subagent_type")
TOOL_INPUT_CAP = 300
ERROR_CAP_FLOOR = 500
INTERRUPTIONS = frozenset({"[Request interrupted by user]", "[Request interrupted by user for tool use]"})
_INJECTED = re.compile(r"<(system-reminder|command-message)>.*?</\1>", re.DOTALL)
_TAGS = re.compile(r"</?(?:command-name|command-args|command-contents|local-command-stdout|local-command-stderr)>")

# A line longer than this is skipped without being held whole. Image and document lines
# are 0.5-1 MB and toolUseResult copies a few hundred KB; 16 MiB leaves a wide margin.
MAX_LINE_BYTES = 16 * 1024 * 1024
_READ_PIECE = 1024 * 1024  # lines are read in pieces: an oversized one costs about two pieces, not its length
# Record types that are read: everything else (progress, snapshots, queue, system...) is noise.
_READ_TYPES = frozenset({"user", "assistant"} | TITLE_TYPES)
_READ_TYPES_RAW = frozenset(kind.encode() for kind in _READ_TYPES)
_TYPE_KEY = b'"type":"'
# Below this size orjson decodes a line about as fast as _noise_type reads it (~1 us): only
# longer lines, such as agent_progress copies of whole messages, are worth the check.
_SKIM_MIN_BYTES = 2048
_MALFORMED = object()  # what _decode gives for a line that is not JSON


@dataclass(slots=True)
class Message:
    """One turn of a conversation, rendered to plain text."""

    uuid: str
    role: Role
    text: str
    session_id: str
    cwd: str
    git_branch: str
    timestamp: str
    is_sidechain: bool
    agent_id: str | None
    line_start: int
    line_end: int
    tools: list[str] = field(default_factory=list)
    message_id: str | None = None


@dataclass(slots=True)
class ParseStats:
    """Line counts of one file. `malformed` includes the `oversized` lines: both are content lost."""

    lines: int = 0
    records: int = 0
    malformed: int = 0
    noise: int = 0
    duplicates: int = 0
    oversized: int = 0


@dataclass(slots=True)
class Transcript:
    source: SourceFile
    messages: list[Message]
    stats: ParseStats
    title: str | None = None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]} …[{len(text) - limit} more chars]"


def _clean_prompt(text: str) -> str:
    text = _TAGS.sub("", _INJECTED.sub("", text)).strip()
    return "" if text in INTERRUPTIONS else text


def _block_texts(content: Any) -> Iterator[str]:
    """Text of a content that is a string or a list of blocks; images and documents dropped."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                yield _str(block.get("text"))


def _render_tool_use(block: dict[str, Any], clean: Cleaner) -> tuple[str, str]:
    name = _str(block.get("name")) or "tool"
    args = _dict(block.get("input"))
    parts = [_cap(clean(_str(args.get(key))), TOOL_INPUT_CAP) for key in TOOL_INPUT_KEYS if _str(args.get(key))]
    return name, f"[{name}] " + " | ".join(parts) if parts else f"[{name}]"


def _noise_type(raw: bytes) -> bool:
    """True when the line's top-level "type" is surely one we skip, found without decoding the line.

    Claude Code writes compact JSON with the envelope (and its "type") before any nested
    object. In valid JSON the bytes `"type":"` can only be a key (a quote inside a string is
    escaped), and with no `{` or `[` before it that key is at the top level. Anything less
    certain (spaces after the colon, escapes in the value, a bracket in an earlier value)
    returns False and the line is decoded. Duplicate top-level keys, which JSON.stringify
    never writes, are not looked for; a noise line damaged after its type but still ending
    in `}` counts as noise rather than malformed: either way it is skipped.
    """
    at = raw.find(_TYPE_KEY)
    if at <= 0 or not raw.startswith(b"{") or raw.find(b"{", 1, at) >= 0 or raw.find(b"[", 1, at) >= 0:
        return False
    start = at + len(_TYPE_KEY)
    end = raw.find(b'"', start)
    value = raw[start:end]
    if end < 0 or b"\\" in value or not value.isascii() or value in _READ_TYPES_RAW:
        return False
    return raw[-3:].rstrip().endswith(b"}")  # a line cut short is left to the decoder to count


def _scrub_surrogates(value: Any) -> Any:
    """Replace lone surrogates (json decodes "\\ud83d" alone; UTF-8 cannot hold one) with U+FFFD.

    Claude Code can cut a string between the halves of an emoji. Iterative, as the value
    may nest nearly as deep as the recursion limit.
    """

    def fix(text: str) -> str:
        return text if text.isascii() else text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    stack = [value] if isinstance(value, dict | list) else []
    while stack:
        container = stack.pop()
        pairs = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in list(pairs):
            if isinstance(item, str):
                container[key] = fix(item)
            elif isinstance(item, dict | list):
                stack.append(item)
    return value


def _decode(raw: bytes) -> Any:
    """The JSON value of a line, or _MALFORMED: orjson first, then json for what orjson rejects."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # json also takes NaN, huge numbers and lone surrogates: let it decide
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _MALFORMED
    return _scrub_surrogates(value) if b"\\u" in raw else value


class _Parser:
    """State for one file: message.id merging, tool names by id, seen uuids."""

    def __init__(self, source: SourceFile, tool_output_chars: int, clean: Cleaner):
        self.source = source
        self.tool_output_chars = tool_output_chars
        self.clean = clean
        self.messages: list[Message] = []
        self.stats = ParseStats()
        self.title: str | None = None
        self.tool_names: dict[str, str] = {}
        self.seen: set[str] = set()

    def feed(self, line_no: int, raw: bytes | None) -> None:
        self.stats.lines += 1
        if raw is None:
            self.stats.oversized += 1
            self.stats.malformed += 1
            return
        if len(raw) >= _SKIM_MIN_BYTES and _noise_type(raw):
            self.stats.records += 1
            self.stats.noise += 1
            return
        record = _decode(raw)
        if not isinstance(record, dict):
            self.stats.malformed += 1
            return
        self.stats.records += 1
        kind = _str(record.get("type"))  # a list or dict here would not even hash
        if kind in TITLE_TYPES:
            self._title(record)
        elif kind in ("user", "assistant") and not record.get("isMeta"):
            self._message(record, kind, line_no)
        else:
            self.stats.noise += 1

    def _title(self, record: dict[str, Any]) -> None:
        title = _str(record.get("summary")) or _str(record.get("customTitle")) or _str(record.get("aiTitle"))
        self.title = title or self.title
        self.stats.noise += 1

    def _envelope(self, record: dict[str, Any], line_no: int, role: Role, text: str) -> Message:
        uuid = _str(record.get("uuid")) or f"{self.source.session_hint}:line{line_no}"
        return Message(
            uuid=uuid,
            role=role,
            text=text,
            session_id=_str(record.get("sessionId")) or self.source.session_hint,
            cwd=_str(record.get("cwd")),
            git_branch=_str(record.get("gitBranch")),
            timestamp=_str(record.get("timestamp")),
            is_sidechain=bool(record.get("isSidechain")) or self.source.agent_id is not None,
            agent_id=self.source.agent_id or (_str(record.get("agentId")) or None),
            line_start=line_no,
            line_end=line_no,
        )

    def _message(self, record: dict[str, Any], kind: str, line_no: int) -> None:
        uuid = _str(record.get("uuid"))
        if uuid and uuid in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(uuid)
        body = _dict(record.get("message"))
        if kind == "assistant":
            self._assistant(record, body, line_no)
        else:
            self._user(record, body, line_no)

    def _assistant(self, record: dict[str, Any], body: dict[str, Any], line_no: int) -> None:
        texts: list[str] = []
        tools: list[str] = []
        for block in _list(body.get("content")):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(_str(block.get("text")))
            elif block.get("type") == "tool_use":
                name, rendered = _render_tool_use(block, self.clean)
                self.tool_names[_str(block.get("id"))] = name
                tools.append(name)
                texts.append(rendered)
        if isinstance(body.get("content"), str):
            texts.append(body["content"])
        text = "\n".join(t for t in texts if t.strip())
        message_id = _str(body.get("id")) or None
        last = self.messages[-1] if self.messages else None
        if last is not None and message_id and last.message_id == message_id and last.role == "assistant":
            last.text = "\n".join(t for t in (last.text, text) if t)
            last.tools.extend(tools)
            last.line_end = line_no
            return
        message = self._envelope(record, line_no, "assistant", text)
        message.tools, message.message_id = tools, message_id
        self.messages.append(message)

    def _tool_result(self, block: dict[str, Any]) -> tuple[str, str]:
        name = self.tool_names.get(_str(block.get("tool_use_id")), "tool")
        text = self.clean("\n".join(_block_texts(block.get("content"))).strip())  # before the cap cuts a secret in two
        if block.get("is_error"):
            return name, f"[{name} error] {_cap(text, max(self.tool_output_chars, ERROR_CAP_FLOOR))}"
        if not text or self.tool_output_chars == 0:
            return name, ""
        return name, f"[{name} result] {_cap(text, self.tool_output_chars)}"

    def _user(self, record: dict[str, Any], body: dict[str, Any], line_no: int) -> None:
        content = body.get("content")
        if record.get("isCompactSummary"):
            text = "\n".join(_block_texts(content)).strip()
            if text:
                self.messages.append(self._envelope(record, line_no, "summary", text))
            return
        results = [self._tool_result(b) for b in _list(content) if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            text = "\n".join(t for _, t in results if t)
            message = self._envelope(record, line_no, "tool", text)
            message.tools = [name for name, _ in results]
            self.messages.append(message)
            return
        text = _clean_prompt("\n".join(_block_texts(content)))
        if text:
            self.messages.append(self._envelope(record, line_no, "user", text))


def _unchanged(text: str) -> str:
    return text


def parse_lines(
    source: SourceFile, lines: Iterable[tuple[int, bytes | None]], tool_output_chars: int, clean: Cleaner = _unchanged
) -> Transcript:
    """Parse (line number, raw line) pairs of one source; None stands for a line read_lines skipped as too long.

    clean (the redactor) sees every text before it is capped or kept.
    """
    parser = _Parser(source, tool_output_chars, clean)
    for line_no, raw in lines:
        # isspace() stops at the first other byte, where strip() would copy the whole line.
        if raw is None or (raw and not raw.isspace()):
            parser.feed(line_no, raw)
    messages = [m for m in parser.messages if m.text.strip()]
    for message in messages:
        if message.role != "tool":  # tool results were cleaned before their cap
            message.text = clean(message.text)
    return Transcript(source, messages, parser.stats, parser.title)


def _long_line(fh: IO[bytes], head: bytes, max_line_bytes: int) -> bytes | None:
    """The whole line that starts with head, or None (the file left after it) when it is over the cap.

    Its length is measured in pieces that are dropped as they are read; a line under the
    cap is then read again in one go, so at most one piece of an oversized line is held.
    """
    start = fh.tell() - len(head)
    size = len(head)
    while (piece := fh.readline(_READ_PIECE)) and len(piece) == _READ_PIECE and not piece.endswith(b"\n"):
        size += len(piece)
    size += len(piece)
    if size - piece.endswith(b"\n") > max_line_bytes:
        return None
    fh.seek(start)
    return fh.read(size)


def read_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """Numbered raw lines of a file, streamed; None for a line over max_line_bytes (newline not counted)."""
    with path.open("rb", buffering=_READ_PIECE) as fh:  # the default 8 KiB buffer makes readline 2x slower
        line_no = 0
        while line := fh.readline(_READ_PIECE):
            line_no += 1
            if len(line) == _READ_PIECE and not line.endswith(b"\n"):
                yield line_no, _long_line(fh, line, max_line_bytes)
            else:
                yield line_no, line if len(line) - line.endswith(b"\n") <= max_line_bytes else None


def parse_file(source: SourceFile, tool_output_chars: int = 1500, clean: Cleaner = _unchanged) -> Transcript:
    """Parse a transcript file. Never raises on bad content; an unreadable file gives no messages."""
    try:
        return parse_lines(source, read_lines(source.path), tool_output_chars, clean)
    except OSError:
        return Transcript(source, [], ParseStats(malformed=1))
