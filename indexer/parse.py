"""What every agent's parser produces, and the pieces they share (REFERENCE §1).

Each agent's own format is read by its module in `indexer/agents/` (claude_code, codex,
gemini_cli): each turns one session file into a Transcript of Messages, leniently. Here
are the shapes they return, the reading of raw lines (streamed, with a cap on a line's
length), JSON decoding that never raises, and the rendering of tool calls and results
that makes every agent's chunks look alike. `parse_file` picks the source's agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson  # decodes these lines about 2.5x faster than json

from indexer.sources import SourceFile

Role = Literal["user", "assistant", "tool", "summary"]
Cleaner = Callable[[str], str]

TOOL_INPUT_KEYS = (
    "description",
    "command",
    "cmd",
    "file_path",
    "absolute_path",
    "path",
    "dir_path",
    "pattern",
    "url",
    "query",
    "subagent_type",
)
TOOL_INPUT_CAP = 300
ERROR_CAP_FLOOR = 500

# A line longer than this is skipped without being held whole. Image and document lines
# are 0.5-1 MB and toolUseResult copies a few hundred KB; 16 MiB leaves a wide margin.
MAX_LINE_BYTES = 16 * 1024 * 1024
_READ_PIECE = 1024 * 1024  # lines are read in pieces: an oversized one costs about two pieces, not its length
MALFORMED = object()  # what decode gives for a line that is not JSON
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


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
    title: str | None = None  # the session's name, when its agent gave it one (main transcripts only)


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]} …[{len(text) - limit} more chars]"


def strip_reminders(text: str) -> str:
    """Claude Code appends <system-reminder> blocks to tool output (the Read tool's malware notice): not the tool's."""
    return _REMINDER.sub("", text).strip() if "<system-reminder>" in text else text


def render_tool_call(name: str, args: dict[str, Any], clean: Cleaner) -> str:
    """`[name] command | path | ...`: what a call did, never its whole input."""
    parts: list[str] = []
    for key in TOOL_INPUT_KEYS:
        value = args.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = " ".join(value[2:] if len(value) > 2 and value[1] in ("-lc", "-c") else value)  # ["bash", "-lc", X]
        if isinstance(value, str) and value:
            parts.append(cap(clean(value), TOOL_INPUT_CAP))
    return f"[{name}] " + " | ".join(parts) if parts else f"[{name}]"


def render_tool_result(name: str, text: str, *, is_error: bool, tool_output_chars: int, clean: Cleaner) -> str:
    """A tool's output, redacted before it is capped (so a secret is never cut in two); errors always kept."""
    text = clean(text.strip())
    if is_error:
        return f"[{name} error] {cap(text, max(tool_output_chars, ERROR_CAP_FLOOR))}"
    if not text or tool_output_chars == 0:
        return ""
    return f"[{name} result] {cap(text, tool_output_chars)}"


def scrub_surrogates(value: Any) -> Any:
    """Replace lone surrogates (json decodes "\\ud83d" alone; UTF-8 cannot hold one) with U+FFFD.

    An agent can cut a string between the halves of an emoji. Iterative, as the value
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


def decode(raw: bytes) -> Any:
    """The JSON value of a line or document, or MALFORMED: orjson first, then json for what orjson rejects."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # json also takes NaN, huge numbers and lone surrogates: let it decide
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return MALFORMED
    return scrub_surrogates(value) if b"\\u" in raw else value


def loads_or_empty(text: str) -> Any:
    """A JSON value held in a string (tool arguments), or {} when it is not JSON."""
    value = decode(text.encode("utf-8", "replace"))
    return {} if value is MALFORMED else value


def finish(
    source: SourceFile, messages: list[Message], stats: ParseStats, clean: Cleaner, title: str | None = None
) -> Transcript:
    """Drop empty messages and redact the rest (tool results were redacted before their cap)."""
    kept = [m for m in messages if m.text.strip()]
    for message in kept:
        if message.role != "tool":
            message.text = clean(message.text)
    return Transcript(source, kept, stats, clean(title) if title else None)


def unchanged(text: str) -> str:
    return text


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


def parse_file(source: SourceFile, tool_output_chars: int = 1500, clean: Cleaner = unchanged) -> Transcript:
    """Parse a session file with its agent's parser. Never raises on bad content; an unreadable file gives no messages."""
    from indexer.agents import agent_named  # the agents' modules build on this one

    return agent_named(source.agent).parse(source, tool_output_chars, clean)
