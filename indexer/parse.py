"""Parse one Claude Code transcript into messages, leniently (REFERENCE §1).

Kept: what the person typed, the assistant's text, tool calls (command, path and
description only), tool results (capped text; errors always kept) and compaction
summaries. Skipped: progress, snapshots, queue, attachments, system notices, isMeta
text, thinking, base64 images and documents. A line that is not a JSON object, or is
not UTF-8, is counted and skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from indexer.sources import SourceFile

Role = Literal["user", "assistant", "tool", "summary"]

TITLE_TYPES = frozenset({"summary", "custom-title", "ai-title"})
TOOL_INPUT_KEYS = ("description", "command", "file_path", "path", "pattern", "url", "query", "subagent_type")
TOOL_INPUT_CAP = 300
ERROR_CAP_FLOOR = 500
INTERRUPTIONS = frozenset({"[Request interrupted by user]", "[Request interrupted by user for tool use]"})
_INJECTED = re.compile(r"<(system-reminder|command-message)>.*?</\1>", re.DOTALL)
_TAGS = re.compile(r"</?(?:command-name|command-args|command-contents|local-command-stdout|local-command-stderr)>")


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
    lines: int = 0
    records: int = 0
    malformed: int = 0
    noise: int = 0
    duplicates: int = 0


@dataclass(slots=True)
class Transcript:
    source: SourceFile
    messages: list[Message]
    stats: ParseStats
    title: str | None = None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


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


def _render_tool_use(block: dict[str, Any]) -> tuple[str, str]:
    name = _str(block.get("name")) or "tool"
    args = block.get("input") if isinstance(block.get("input"), dict) else {}
    parts = [_cap(_str(args.get(key)), TOOL_INPUT_CAP) for key in TOOL_INPUT_KEYS if _str(args.get(key))]
    return name, f"[{name}] " + " | ".join(parts) if parts else f"[{name}]"


class _Parser:
    """State for one file: message.id merging, tool names by id, seen uuids."""

    def __init__(self, source: SourceFile, tool_output_chars: int):
        self.source = source
        self.tool_output_chars = tool_output_chars
        self.messages: list[Message] = []
        self.stats = ParseStats()
        self.title: str | None = None
        self.tool_names: dict[str, str] = {}
        self.seen: set[str] = set()

    def feed(self, line_no: int, raw: bytes) -> None:
        self.stats.lines += 1
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.stats.malformed += 1
            return
        if not isinstance(record, dict):
            self.stats.malformed += 1
            return
        self.stats.records += 1
        kind = record.get("type")
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
        body = record.get("message") if isinstance(record.get("message"), dict) else {}
        if kind == "assistant":
            self._assistant(record, body, line_no)
        else:
            self._user(record, body, line_no)

    def _assistant(self, record: dict[str, Any], body: dict[str, Any], line_no: int) -> None:
        texts: list[str] = []
        tools: list[str] = []
        for block in body.get("content") if isinstance(body.get("content"), list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(_str(block.get("text")))
            elif block.get("type") == "tool_use":
                name, rendered = _render_tool_use(block)
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
        text = "\n".join(_block_texts(block.get("content"))).strip()
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
        blocks = content if isinstance(content, list) else []
        results = [self._tool_result(b) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            text = "\n".join(t for _, t in results if t)
            message = self._envelope(record, line_no, "tool", text)
            message.tools = [name for name, _ in results]
            self.messages.append(message)
            return
        text = _clean_prompt("\n".join(_block_texts(content)))
        if text:
            self.messages.append(self._envelope(record, line_no, "user", text))


def parse_lines(source: SourceFile, lines: Iterator[tuple[int, bytes]], tool_output_chars: int) -> Transcript:
    """Parse (line number, raw line) pairs of one source."""
    parser = _Parser(source, tool_output_chars)
    for line_no, raw in lines:
        if raw.strip():
            parser.feed(line_no, raw)
    messages = [m for m in parser.messages if m.text.strip()]
    return Transcript(source, messages, parser.stats, parser.title)


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines of a file, streamed."""
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def parse_file(source: SourceFile, tool_output_chars: int = 1500) -> Transcript:
    """Parse a transcript file. Never raises on bad content; an unreadable file gives no messages."""
    try:
        return parse_lines(source, read_lines(source.path), tool_output_chars)
    except OSError:
        return Transcript(source, [], ParseStats(malformed=1))
