"""Codex CLI: `$CODEX_HOME` or `~/.codex`, `sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`
(and `archived_sessions/`), one JSON record a line.

Records (0.39 to 0.135; both in the fixtures): `{timestamp, type, payload}` with type
`session_meta` (id, cwd, git.branch), `turn_context` (the turn's cwd), `response_item`
(the conversation: `message` by role, `function_call` / `custom_tool_call` /
`local_shell_call` / `web_search_call` and their outputs, `reasoning`), `event_msg` (what the
UI showed: copies of the messages, token counts) and `compacted` (a compaction summary).
Rollouts older than that wrote the payload itself on each line, after a first line with
the session's id: those are read the same way.

Kept: what the person typed (user messages), the assistant's text, tool calls (command,
path, query; a patch's first lines), tool output (capped; a non-zero exit code or failure
is an error, always kept), compaction summaries, and the session's name from
`<home>/session_index.jsonl` (`{id, thread_name, updated_at}`, the newest entry winning) as its
title. Skipped: developer and system
messages, the context Codex injects as user messages (<environment_context>, AGENTS.md
instructions...), reasoning (encrypted), every event_msg (copies), token counts. Codex
writes no message ids: a message's id is `<session id>:<line>`, stable as rollouts are
only appended to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from indexer import parse as shared  # the helpers every agent's parser uses
from indexer.parse import MALFORMED, Cleaner, Message, ParseStats, Role, Transcript
from indexer.sources import SourceFile, stat_source

NAME = "codex"
FOLDERS = ("sessions", "archived_sessions")
INJECTED = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<INSTRUCTIONS>",
    "<permissions instructions>",
    "<turn_aborted>",
)
CALLS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "web_search_call"})
OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
_ROLLOUT_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$")


def resume_command(session_id: str) -> str:
    return f"codex resume {session_id}"


def describe(path: Path, codex_dir: Path) -> SourceFile | None:
    if not (path.name.startswith("rollout-") and path.name.endswith(".jsonl")):
        return None
    found = _ROLLOUT_ID.search(path.name)
    hint = found.group(1) if found else path.name.removesuffix(".jsonl")
    return stat_source(path, path.relative_to(codex_dir).as_posix(), hint, NAME)


def discover(codex_dir: Path) -> Iterator[SourceFile]:
    """Every rollout under the Codex home, in a stable order."""
    for folder in FOLDERS:
        for root, dirs, files in os.walk(codex_dir / folder):
            dirs.sort()
            for name in sorted(files):
                source = describe(Path(root) / name, codex_dir)
                if source is not None:
                    yield source


@lru_cache(maxsize=4)
def _thread_names(index: Path, size: int, mtime_ns: int) -> dict[str, str]:
    """Session id -> its latest thread name, from one version (size, mtime) of the session index."""
    names: dict[str, str] = {}
    for _, raw in shared.read_lines(index):
        entry = MALFORMED if raw is None else shared.decode(raw)
        if isinstance(entry, dict) and shared.text_of(entry.get("id")) and shared.text_of(entry.get("thread_name")).strip():
            names[shared.text_of(entry.get("id"))] = shared.text_of(entry.get("thread_name")).strip()
    return names


def thread_name(source: SourceFile, session_id: str) -> str | None:
    """The name the person gave the session, if the Codex home beside the rollout has one for it."""
    depth = len(Path(source.rel_path.split(":", 1)[-1]).parts)  # sessions/YYYY/MM/DD/rollout-... under the home
    index = source.path.parents[depth - 1] / "session_index.jsonl" if depth <= len(source.path.parents) else None
    try:
        stat = index.stat() if index else None
    except OSError:
        return None
    return _thread_names(index, stat.st_size, stat.st_mtime_ns).get(session_id) if index and stat else None


def _texts(content: Any) -> str:
    """input_text / output_text / text parts of a message, joined."""
    if isinstance(content, str):
        return content
    return "\n".join(
        shared.text_of(part.get("text")) for part in shared.list_of(content) if isinstance(part, dict) and part.get("text")
    )


class _Parser:
    """State for one rollout: the session, the turn's cwd, tool names by call id."""

    def __init__(self, source: SourceFile, tool_output_chars: int, clean: Cleaner):
        self.source, self.tool_output_chars, self.clean = source, tool_output_chars, clean
        self.messages: list[Message] = []
        self.stats = ParseStats()
        self.session_id, self.cwd, self.branch = source.session_hint, "", ""
        self.tool_names: dict[str, str] = {}

    def feed(self, line_no: int, raw: bytes | None) -> None:
        self.stats.lines += 1
        record = MALFORMED if raw is None else shared.decode(raw)
        if raw is None:
            self.stats.oversized += 1
        if not isinstance(record, dict):
            self.stats.malformed += 1
            return
        self.stats.records += 1
        kind = shared.text_of(record.get("type"))
        payload = shared.dict_of(record.get("payload")) if "payload" in record else record  # older rollouts: the item itself
        timestamp = shared.text_of(record.get("timestamp")) or shared.text_of(payload.get("timestamp"))
        if kind == "session_meta" or (line_no == 1 and not kind and "id" in record):
            self._meta(payload)
        elif kind == "turn_context":
            self.cwd = shared.text_of(payload.get("cwd")) or self.cwd
            if self.messages and self.messages[-1].role == "user":  # 0.39 writes a turn's context after its prompt
                self.messages[-1].cwd = self.cwd
            self.stats.noise += 1
        elif kind == "compacted":
            self._add("summary", shared.text_of(payload.get("message")), line_no, timestamp)
        elif kind == "response_item" or (kind in CALLS | OUTPUTS | {"message"} and "payload" not in record):
            self._item(payload, line_no, timestamp)
        else:
            self.stats.noise += 1  # event_msg copies, token counts, state lines

    def _meta(self, payload: dict[str, Any]) -> None:
        self.session_id = shared.text_of(payload.get("id")) or self.session_id
        self.cwd = shared.text_of(payload.get("cwd")) or self.cwd
        self.branch = shared.text_of(shared.dict_of(payload.get("git")).get("branch")) or self.branch
        self.stats.noise += 1

    def _add(self, role: Role, text: str, line_no: int, timestamp: str, tools: list[str] | None = None) -> Message | None:
        if not text.strip():
            self.stats.noise += 1
            return None
        message = Message(
            uuid=f"{self.session_id}:{line_no}",
            role=role,
            text=text,
            session_id=self.session_id,
            cwd=self.cwd,
            git_branch=self.branch,
            timestamp=timestamp,
            is_sidechain=False,
            agent_id=None,
            line_start=line_no,
            line_end=line_no,
            tools=tools or [],
        )
        self.messages.append(message)
        return message

    def _item(self, item: dict[str, Any], line_no: int, timestamp: str) -> None:
        kind = shared.text_of(item.get("type"))
        if kind == "message":
            role = shared.text_of(item.get("role"))
            text = _texts(item.get("content")).strip()
            if role == "user" and not text.startswith(INJECTED):
                self._add("user", text, line_no, timestamp)
            elif role == "assistant":
                self._add("assistant", text, line_no, timestamp)
            else:
                self.stats.noise += 1
        elif kind in CALLS:
            self._call(kind, item, line_no, timestamp)
        elif kind in OUTPUTS:
            self._output(item, line_no, timestamp)
        else:
            self.stats.noise += 1  # reasoning and what else a newer Codex writes

    def _call(self, kind: str, item: dict[str, Any], line_no: int, timestamp: str) -> None:
        """A tool call, added to the assistant's turn as Claude Code's are."""
        name = shared.text_of(item.get("name")) or {"local_shell_call": "shell", "web_search_call": "web_search"}.get(
            kind, "tool"
        )
        self.tool_names[shared.text_of(item.get("call_id"))] = name
        arguments = item.get("arguments")
        args = shared.dict_of(shared.loads_or_empty(arguments) if isinstance(arguments, str) else arguments)
        args.update({k: v for k, v in shared.dict_of(item.get("action")).items() if k in ("command", "query", "url")})
        if isinstance(item.get("input"), str):  # a freeform call: apply_patch's patch, a script
            args.setdefault("command", "\n".join(item["input"].splitlines()[:6]))
        rendered = shared.render_tool_call(name, args, self.clean)
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant":
            last.text, last.line_end = f"{last.text}\n{rendered}", line_no
            last.tools.append(name)
        else:
            self._add("assistant", rendered, line_no, timestamp, [name])

    def _output(self, item: dict[str, Any], line_no: int, timestamp: str) -> None:
        name = self.tool_names.get(shared.text_of(item.get("call_id")), "tool")
        output = item.get("output")
        text, failed = shared.text_of(output), False
        wrapped = (
            shared.dict_of(shared.loads_or_empty(output))
            if isinstance(output, str) and output.startswith("{")
            else shared.dict_of(output)
        )
        if wrapped:  # {"output": ..., "metadata": {"exit_code": n}}, or {content, success}
            text = shared.text_of(wrapped.get("output")) or shared.text_of(wrapped.get("content")) or text
            exit_code = shared.dict_of(wrapped.get("metadata")).get("exit_code")
            failed = (isinstance(exit_code, int) and exit_code != 0) or wrapped.get("success") is False
        rendered = shared.render_tool_result(
            name, text, is_error=failed, tool_output_chars=self.tool_output_chars, clean=self.clean
        )
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "tool":
            last.text, last.line_end = "\n".join(t for t in (last.text, rendered) if t), line_no
            last.tools.append(name)
        elif rendered:
            self._add("tool", rendered, line_no, timestamp, [name])


def parse_lines(
    source: SourceFile, lines: Iterable[tuple[int, bytes | None]], tool_output_chars: int, clean: Cleaner = shared.unchanged
) -> Transcript:
    """Parse (line number, raw line) pairs of one rollout; None stands for a line too long to read."""
    parser = _Parser(source, tool_output_chars, clean)
    for line_no, raw in lines:
        if raw is None or (raw and not raw.isspace()):
            parser.feed(line_no, raw)
    return shared.finish(source, parser.messages, parser.stats, clean, thread_name(source, parser.session_id))


def parse(source: SourceFile, tool_output_chars: int = 1500, clean: Cleaner = shared.unchanged) -> Transcript:
    """Parse a rollout. Never raises on bad content; an unreadable file gives no messages."""
    try:
        return parse_lines(source, shared.read_lines(source.path), tool_output_chars, clean)
    except OSError:
        return Transcript(source, [], ParseStats(malformed=1))
