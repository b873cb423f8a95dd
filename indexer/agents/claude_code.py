"""Claude Code: `~/.claude/projects` (or $CLAUDE_CONFIG_DIR), one JSONL record a line (REFERENCE §1).

Layouts under the projects dir:
    <project>/<session>.jsonl                                      a session
    <project>/agent-<id>.jsonl                                     2.0.x subagent, beside its session
    <project>/<session>/subagents/agent-<id>.jsonl                 2.1.x subagent (+ agent-<id>.meta.json)
    <project>/<session>/subagents/workflows/<wf>/agent-<id>.jsonl  2.1.2xx workflow agents, beside a
                                                                   journal.jsonl that is not a transcript
`agent-acompact-*` files are compaction runs that repeat the session's own summary: skipped.

Kept: what the person typed (prompts, prompts typed while a tool ran, queued prompts),
the assistant's text, tool calls (command, path and description only), tool results
(capped text, injected <system-reminder>s removed; errors always kept), compaction
summaries and the session's title. Skipped: progress, snapshots, system notices, other
attachments, isMeta text, task notifications, thinking, base64 images and documents. A
line that is not a JSON object, is not UTF-8, nests too deeply or is longer than
MAX_LINE_BYTES is counted as malformed and skipped; parsing goes on with the next line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from indexer import parse as shared  # the helpers every agent's parser uses
from indexer.parse import MALFORMED, Cleaner, Message, ParseStats, Role, Transcript
from indexer.sources import CLAUDE_CODE, SourceFile, stat_source

NAME = CLAUDE_CODE
# Title records, most telling first: a name the person gave beats a generated one.
TITLE_FIELDS = {"custom-title": "customTitle", "agent-name": "agentName", "ai-title": "aiTitle", "summary": "summary"}
INTERRUPTIONS = frozenset({"[Request interrupted by user]", "[Request interrupted by user for tool use]"})
NOT_TYPED = ("<task-notification>", "<agent-message", "<channel")  # queued text no person wrote
_INJECTED = re.compile(r"<(system-reminder|command-message)>.*?</\1>", re.DOTALL)
_TAGS = re.compile(r"</?(?:command-name|command-args|command-contents|local-command-stdout|local-command-stderr)>")

# Record types that are read: everything else (progress, snapshots, system...) is noise.
_READ_TYPES = frozenset({"user", "assistant", "queue-operation", "attachment"} | TITLE_FIELDS.keys())
_READ_TYPES_RAW = frozenset(kind.encode() for kind in _READ_TYPES)
_TYPE_KEY = b'"type":"'
# Below this size orjson decodes a line about as fast as _noise_type reads it (~1 us): only
# longer lines, such as agent_progress copies of whole messages, are worth the check.
_SKIM_MIN_BYTES = 2048


def resume_command(session_id: str) -> str:
    return f"claude --resume {session_id}"


# -- discovery -------------------------------------------------------------------------------


def _agent_id(name: str) -> str | None:
    stem = name.removesuffix(".jsonl")
    return stem.removeprefix("agent-") if stem.startswith("agent-") else None


def _agent_type(path: Path) -> str | None:
    meta = path.with_name(path.name.removesuffix(".jsonl") + ".meta.json")
    try:
        value = json.loads(meta.read_text(encoding="utf-8")).get("agentType")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def describe(path: Path, projects_dir: Path) -> SourceFile | None:
    """What a file under the projects dir is, or None when it is no transcript to index."""
    name = path.name
    parts = path.relative_to(projects_dir).parts
    agent_id = _agent_id(name)
    if not name.endswith(".jsonl") or name.startswith("agent-acompact-"):
        return None
    if "subagents" in parts[:-1]:  # <session>/subagents/[workflows/<wf>/]agent-<id>.jsonl: journal.jsonl is not one
        if agent_id is None or parts.index("subagents") < 2:
            return None
        session_hint = parts[parts.index("subagents") - 1]
    elif len(parts) == 2:
        session_hint = name.removesuffix(".jsonl")
    else:
        return None  # tool-results and anything else inside a session's folder
    agent_type = _agent_type(path) if agent_id is not None else None
    return stat_source(path, "/".join(parts), session_hint, NAME, agent_id, agent_type)


def discover(projects_dir: Path) -> Iterator[SourceFile]:
    """Yield every transcript under projects_dir, in a stable order."""
    if not projects_dir.is_dir():
        return
    for root, dirs, files in os.walk(projects_dir):
        dirs[:] = sorted(d for d in dirs if d != "tool-results")
        for name in sorted(files):
            if name.endswith(".jsonl"):
                source = describe(Path(root) / name, projects_dir)
                if source is not None:
                    yield source


# -- parsing ---------------------------------------------------------------------------------


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
                yield shared.text_of(block.get("text"))


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
    if end < 0 or b"\\" in value or not value.isascii():
        return False
    if value == b"attachment":  # only a queued prompt is read; hook output, skill lists... are not
        return b'"queued_command"' not in raw and raw[-3:].rstrip().endswith(b"}")
    if value in _READ_TYPES_RAW:
        return False
    return raw[-3:].rstrip().endswith(b"}")  # a line cut short is left to the decoder to count


class _Parser:
    """State for one file: message.id merging, tool names by id, seen uuids, the prompt queue."""

    def __init__(self, source: SourceFile, tool_output_chars: int, clean: Cleaner):
        self.source = source
        self.tool_output_chars = tool_output_chars
        self.clean = clean
        self.messages: list[Message] = []
        self.stats = ParseStats()
        self.titles: dict[str, str] = {}
        self.tool_names: dict[str, str] = {}
        self.seen: set[str] = set()
        self.queue: list[Message] = []  # enqueued prompts not yet taken up
        self.where = ("", "")  # the cwd and branch of the latest record that had them, for records that lack them
        self.queued: set[int] = set()  # ids of messages that came from the queue

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
        record = shared.decode(raw)
        if record is MALFORMED or not isinstance(record, dict):
            self.stats.malformed += 1
            return
        self.stats.records += 1
        kind = shared.text_of(record.get("type"))  # a list or dict here would not even hash
        if kind in TITLE_FIELDS:
            self._title(kind, record)
        elif kind in ("user", "assistant") and not record.get("isMeta"):
            self._message(record, kind, line_no)
        elif kind == "queue-operation":
            self._queue_operation(record, line_no)
        elif kind == "attachment" and self._queued_command(record, line_no):
            pass
        else:
            self.stats.noise += 1

    def _title(self, kind: str, record: dict[str, Any]) -> None:
        title = shared.text_of(record.get(TITLE_FIELDS[kind])).strip()
        if title:
            self.titles[kind] = title
        self.stats.noise += 1

    @property
    def title(self) -> str | None:
        if self.source.agent_id is not None:
            return None  # a subagent's name is not its session's
        return next((self.titles[kind] for kind in TITLE_FIELDS if kind in self.titles), None)

    def _envelope(self, record: dict[str, Any], line_no: int, role: Role, text: str, uuid: str = "") -> Message:
        uuid = uuid or shared.text_of(record.get("uuid")) or f"{self.source.session_hint}:line{line_no}"
        cwd, branch = shared.text_of(record.get("cwd")), shared.text_of(record.get("gitBranch"))
        if cwd:
            self.where = (cwd, branch)
        return Message(
            uuid=uuid,
            role=role,
            text=text,
            session_id=shared.text_of(record.get("sessionId")) or self.source.session_hint,
            cwd=cwd,
            git_branch=branch,
            timestamp=shared.text_of(record.get("timestamp")),
            is_sidechain=bool(record.get("isSidechain")) or self.source.agent_id is not None,
            agent_id=self.source.agent_id or (shared.text_of(record.get("agentId")) or None),
            line_start=line_no,
            line_end=line_no,
        )

    def _message(self, record: dict[str, Any], kind: str, line_no: int) -> None:
        uuid = shared.text_of(record.get("uuid"))
        if uuid and uuid in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(uuid)
        body = shared.dict_of(record.get("message"))
        if kind == "assistant":
            self._assistant(record, body, line_no)
        else:
            self._user(record, body, line_no)

    def _assistant(self, record: dict[str, Any], body: dict[str, Any], line_no: int) -> None:
        texts: list[str] = []
        tools: list[str] = []
        for block in shared.list_of(body.get("content")):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(shared.text_of(block.get("text")))
            elif block.get("type") == "tool_use":
                name = shared.text_of(block.get("name")) or "tool"
                self.tool_names[shared.text_of(block.get("id"))] = name
                tools.append(name)
                texts.append(shared.render_tool_call(name, shared.dict_of(block.get("input")), self.clean))
        if isinstance(body.get("content"), str):
            texts.append(body["content"])
        text = "\n".join(t for t in texts if t.strip())
        message_id = shared.text_of(body.get("id")) or None
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
        name = self.tool_names.get(shared.text_of(block.get("tool_use_id")), "tool")
        text = shared.strip_reminders("\n".join(_block_texts(block.get("content"))))
        rendered = shared.render_tool_result(
            name, text, is_error=bool(block.get("is_error")), tool_output_chars=self.tool_output_chars, clean=self.clean
        )
        return name, rendered

    def _user(self, record: dict[str, Any], body: dict[str, Any], line_no: int) -> None:
        content = body.get("content")
        if record.get("isCompactSummary"):
            text = "\n".join(_block_texts(content)).strip()
            if text:
                self.messages.append(self._envelope(record, line_no, "summary", text))
            return
        blocks = shared.list_of(content)
        results = [self._tool_result(b) for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            message = self._envelope(record, line_no, "tool", "\n".join(t for _, t in results if t))
            message.tools = [name for name, _ in results]
            self.messages.append(message)
            # 2.1.19-2.1.37 put a prompt typed while the tool ran after the results, in the same record.
            typed = _clean_prompt("\n".join(_block_texts([b for b in blocks if isinstance(b, dict) and b.get("type") == "text"])))
            if typed:
                self.messages.append(self._envelope(record, line_no, "user", typed, uuid=f"{message.uuid}:typed"))
            return
        text = _clean_prompt("\n".join(_block_texts(content)))
        if text:
            self.messages.append(self._envelope(record, line_no, "user", text))

    # -- prompts typed while Claude was busy -------------------------------------------------

    def _queue_operation(self, record: dict[str, Any], line_no: int) -> None:
        """enqueue holds the prompt; dequeue means it became a user record; remove and popAll
        mean Claude took it in mid-turn, where only the enqueue record has its text."""
        operation = shared.text_of(record.get("operation"))
        self.stats.noise += 1
        if operation == "enqueue":
            text = _clean_prompt("\n".join(_block_texts(record.get("content"))))
            # A task notification is no person's, and is taken up without a queue operation of its own.
            if text and not text.startswith(NOT_TYPED):
                self.queue.append(
                    self._envelope(record, line_no, "user", text, uuid=f"{self.source.session_hint}:queued{line_no}")
                )
        elif operation == "dequeue" and self.queue:
            del self.queue[0]
        elif operation == "remove" and self.queue:
            self._take_up(self.queue[:1], line_no)
            del self.queue[0]
        elif operation == "popAll":  # the whole queue, taken in as one turn
            self._take_up(self.queue, line_no)
            self.queue = []

    def _take_up(self, prompts: list[Message], line_no: int) -> None:
        """Add queued prompts, as one turn, where they entered the conversation, with the session's cwd and branch then."""
        if not prompts:
            return
        prompt = prompts[0]
        prompt.text = "\n".join(p.text for p in prompts)
        prompt.line_start = prompt.line_end = line_no
        prompt.cwd, prompt.git_branch = self.where
        self.queued.add(id(prompt))
        self.messages.append(prompt)

    def _queued_command(self, record: dict[str, Any], line_no: int) -> bool:
        """2.1.2xx writes a prompt taken in mid-turn as an attachment; other origins are not a person's."""
        attachment = shared.dict_of(record.get("attachment"))
        origin = shared.text_of(shared.dict_of(attachment.get("origin")).get("kind")) or "human"
        if attachment.get("type") != "queued_command" or attachment.get("isMeta") or record.get("isMeta"):
            return False
        if shared.text_of(attachment.get("commandMode")) not in ("", "prompt") or origin != "human":
            return False
        text = _clean_prompt("\n".join(_block_texts(attachment.get("prompt"))))
        uuid = shared.text_of(record.get("uuid"))
        if not text or text.startswith(NOT_TYPED) or (uuid and uuid in self.seen):
            return False
        self.seen.add(uuid)
        self.messages.append(self._envelope(record, line_no, "user", text))
        return True

    def result(self) -> list[Message]:
        """The messages, with queued prompts that also exist as a user record (or attachment) left out."""
        self._take_up(self.queue, self.stats.lines)  # still waiting when the file ends: typed all the same
        if not self.queued:
            return self.messages
        typed = {m.text for m in self.messages if m.role == "user" and id(m) not in self.queued}
        return [m for m in self.messages if id(m) not in self.queued or m.text not in typed]


def parse_lines(
    source: SourceFile, lines: Iterable[tuple[int, bytes | None]], tool_output_chars: int, clean: Cleaner = shared.unchanged
) -> Transcript:
    """Parse (line number, raw line) pairs of one source; None stands for a line shared.read_lines skipped as too long.

    clean (the redactor) sees every text before it is capped or kept.
    """
    parser = _Parser(source, tool_output_chars, clean)
    for line_no, raw in lines:
        # isspace() stops at the first other byte, where strip() would copy the whole line.
        if raw is None or (raw and not raw.isspace()):
            parser.feed(line_no, raw)
    return shared.finish(source, parser.result(), parser.stats, clean, parser.title)


def parse(source: SourceFile, tool_output_chars: int = 1500, clean: Cleaner = shared.unchanged) -> Transcript:
    """Parse a transcript file. Never raises on bad content; an unreadable file gives no messages."""
    try:
        return parse_lines(source, shared.read_lines(source.path), tool_output_chars, clean)
    except OSError:
        return Transcript(source, [], ParseStats(malformed=1))
