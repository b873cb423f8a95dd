"""Gemini CLI: `~/.gemini/tmp/<project>/chats/session-<start>-<id8>.json` (one JSON document)
and the newer `session-*.jsonl` (a header line, then message records, `{"$set": {...}}`
patches of the header and `{"$rewindTo": id}` lines; a message written again under the
same id replaces the earlier copy). `<project>` is the SHA-256 of the project's path, or in
newer versions a name with the path in `<project>/.project_root`.

The project path is not in a hashed folder's name: it is taken from `.project_root`, or
else from the paths the session itself mentions (tool arguments, tool output, `directories`),
keeping the one whose SHA-256 is the folder's hash; when none matches, the project is empty.
Gemini CLI records no git branch.

Kept: what the person typed (`user` messages), the model's text (`gemini`), tool calls
(command, path, query) and their results (capped; a failed call is an error, always kept)
and the session's `summary` as its title. Skipped: thoughts, `info` / `error` / `warning`
notices, the "System: Please continue." turns Gemini CLI writes itself, token counts, and
messages a rewind took back. A message's line is where its record starts in the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer import parse as shared  # the helpers every agent's parser uses
from indexer.parse import MALFORMED, Cleaner, Message, ParseStats, Role, Transcript
from indexer.sources import SourceFile, stat_source

NAME = "gemini-cli"
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a .json session is one document, read whole
NOT_TYPED = frozenset({"System: Please continue."})
MAX_PATH_CANDIDATES = 2000
_PATH = re.compile(rb"/[A-Za-z0-9._@%+=,~-][^\s\"'`<>|\\:;,()\[\]{}]*")
_HASH = re.compile(r"[0-9a-f]{64}")


def resume_command(session_id: str) -> str:
    return f"gemini --resume {session_id}"  # run in the project's folder: Gemini CLI keeps sessions per project


def describe(path: Path, tmp_dir: Path) -> SourceFile | None:
    parts = path.relative_to(tmp_dir).parts
    if len(parts) < 3 or parts[1] != "chats" or not path.name.startswith("session-") or path.suffix not in (".json", ".jsonl"):
        return None
    hint = path.name.removesuffix(path.suffix).rsplit("-", 1)[-1]
    return stat_source(path, path.relative_to(tmp_dir).as_posix(), hint, NAME)


def discover(tmp_dir: Path) -> Iterator[SourceFile]:
    """Every chat file under ~/.gemini/tmp, in a stable order."""
    if not tmp_dir.is_dir():
        return
    for project in sorted(p for p in tmp_dir.iterdir() if p.is_dir()):
        for root, dirs, files in os.walk(project / "chats"):
            dirs.sort()
            for name in sorted(files):
                source = describe(Path(root) / name, tmp_dir)
                if source is not None:
                    yield source


def _texts(content: Any) -> str:
    """A PartListUnion's text: a string, a part {text}, or a list of them."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    return "\n".join(shared.text_of(part.get("text")) if isinstance(part, dict) else shared.text_of(part) for part in parts)


def _result_text(result: Any) -> str:
    """What a tool call returned: its functionResponse output or error, or plain text parts."""
    texts: list[str] = []
    for part in result if isinstance(result, list) else [result]:
        response = shared.dict_of(shared.dict_of(shared.dict_of(part).get("functionResponse")).get("response"))
        if response:
            texts.append(shared.text_of(response.get("output")) or shared.text_of(response.get("error")))
        elif isinstance(part, dict | str):
            texts.append(_texts(part))
    return "\n".join(t for t in texts if t)


def project_of(path: Path, raw: bytes, header: dict[str, Any]) -> str:
    """The project's path: .project_root beside chats/, else a path in the file whose SHA-256 is the folder's hash."""
    folder = path.parent.parent if path.parent.name == "chats" else path.parent.parent.parent
    try:
        root = (folder / ".project_root").read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        root = ""
    if root:
        return root
    wanted = shared.text_of(header.get("projectHash")) or folder.name
    if not _HASH.fullmatch(wanted):
        return ""
    mentioned = [d.encode() for d in shared.list_of(header.get("directories")) if isinstance(d, str)] + _PATH.findall(raw)
    seen: set[str] = set()
    for found in mentioned:
        candidate: str = found.decode("utf-8", "replace").rstrip("./")
        while candidate and candidate not in seen and len(seen) < MAX_PATH_CANDIDATES:
            seen.add(candidate)
            if hashlib.sha256(candidate.encode()).hexdigest() == wanted:
                return candidate
            candidate = candidate.rsplit("/", 1)[0]
    return ""


def _records(source: SourceFile, stats: ParseStats) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], bytes]:
    """The header and the (line, message record) list of a chat file, JSON or JSONL, patches applied."""
    if source.path.suffix == ".json":
        return _document(source, stats)
    header: dict[str, Any] = {}
    slots: dict[str, tuple[int, dict[str, Any]]] = {}  # by id, in first-seen order; a rewrite replaces the copy
    for line_no, raw in shared.read_lines(source.path):
        if raw is not None and (not raw or raw.isspace()):
            continue
        stats.lines += 1
        record = MALFORMED if raw is None else shared.decode(raw)
        stats.oversized += raw is None
        if not isinstance(record, dict):
            stats.malformed += 1
            continue
        stats.records += 1
        if "$set" in record:
            header.update(shared.dict_of(record["$set"]))
        elif "$rewindTo" in record:
            ids = list(slots)
            target = shared.text_of(record.get("$rewindTo"))
            for key in ids[ids.index(target) if target in slots else 0 :]:
                del slots[key]
        elif "type" in record:
            key = shared.text_of(record.get("id")) or f"line{line_no}"
            slots[key] = (slots[key][0] if key in slots else line_no, record)
        else:
            header.update(record)
    return header, list(slots.values()), b"\n".join(_jsonl_texts(slots))


def _jsonl_texts(slots: dict[str, tuple[int, dict[str, Any]]]) -> Iterator[bytes]:
    """Tool arguments and results, where a session's paths are found."""
    for _, record in slots.values():
        for call in shared.list_of(record.get("toolCalls")):
            if isinstance(call, dict):
                yield repr(call.get("args")).encode("utf-8", "replace")
                yield _result_text(call.get("result")).encode("utf-8", "replace")


def _document(source: SourceFile, stats: ParseStats) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], bytes]:
    stats.lines = stats.records = 1
    if source.size > MAX_DOCUMENT_BYTES:
        stats.oversized = stats.malformed = 1
        return {}, [], b""
    raw = source.path.read_bytes()
    document = shared.decode(raw)
    if not isinstance(document, dict):
        stats.malformed = 1
        return {}, [], b""
    messages = [m for m in shared.list_of(document.get("messages")) if isinstance(m, dict)]
    return document, list(zip(_lines_of(raw, messages), messages, strict=True)), raw


def _lines_of(raw: bytes, messages: list[dict[str, Any]]) -> list[int]:
    """The line each message's id is on, searching forward through the document (1 when not found)."""
    lines: list[int] = []
    at, line = 0, 1
    for message in messages:
        key = shared.text_of(message.get("id")).encode("utf-8", "replace")
        found = raw.find(b'"' + key + b'"', at) if key else -1
        if found >= 0:
            line += raw.count(b"\n", at, found)
            at = found
        lines.append(line)
    return lines


class _Parser:
    def __init__(self, source: SourceFile, tool_output_chars: int, clean: Cleaner, header: dict[str, Any], project: str):
        self.source, self.tool_output_chars, self.clean = source, tool_output_chars, clean
        self.session_id = shared.text_of(header.get("sessionId")) or source.session_hint
        self.project = project
        self.sidechain = header.get("kind") == "subagent"
        self.messages: list[Message] = []

    def add(
        self, role: Role, text: str, record: dict[str, Any], line_no: int, uuid: str = "", tools: list[str] | None = None
    ) -> None:
        self.messages.append(
            Message(
                uuid=uuid or shared.text_of(record.get("id")) or f"{self.session_id}:{line_no}",
                role=role,
                text=text,
                session_id=self.session_id,
                cwd=self.project,
                git_branch="",
                timestamp=shared.text_of(record.get("timestamp")),
                is_sidechain=self.sidechain,
                agent_id=None,
                line_start=line_no,
                line_end=line_no,
                tools=tools or [],
            )
        )

    def record(self, line_no: int, record: dict[str, Any], stats: ParseStats) -> None:
        kind = shared.text_of(record.get("type"))
        text = _texts(record.get("content")).strip()
        if kind == "user" and text not in NOT_TYPED:
            self.add("user", text, record, line_no)
        elif kind == "gemini":
            self._model_turn(line_no, record, text)
        else:
            stats.noise += 1  # info, error and warning notices

    def _model_turn(self, line_no: int, record: dict[str, Any], text: str) -> None:
        calls = [c for c in shared.list_of(record.get("toolCalls")) if isinstance(c, dict)]
        names = [shared.text_of(c.get("name")) or "tool" for c in calls]
        rendered = [
            shared.render_tool_call(name, shared.dict_of(c.get("args")), self.clean) for name, c in zip(names, calls, strict=True)
        ]
        self.add("assistant", "\n".join(t for t in (text, *rendered) if t), record, line_no, tools=names)
        results = [
            shared.render_tool_result(
                name,
                _result_text(c.get("result")),
                is_error=shared.text_of(c.get("status")) in ("error", "cancelled"),
                tool_output_chars=self.tool_output_chars,
                clean=self.clean,
            )
            for name, c in zip(names, calls, strict=True)
        ]
        if any(results):
            self.add(
                "tool",
                "\n".join(r for r in results if r),
                record,
                line_no,
                uuid=f"{shared.text_of(record.get('id'))}:tools",
                tools=names,
            )


def parse(source: SourceFile, tool_output_chars: int = 1500, clean: Cleaner = shared.unchanged) -> Transcript:
    """Parse a chat file. Never raises on bad content; an unreadable file gives no messages."""
    stats = ParseStats()
    try:
        header, records, raw = _records(source, stats)
    except OSError:
        return Transcript(source, [], ParseStats(malformed=1))
    parser = _Parser(source, tool_output_chars, clean, header, project_of(source.path, raw, header))
    for line_no, record in records:
        parser.record(line_no, record, stats)
    summary = shared.text_of(header.get("summary")).strip() or None
    return shared.finish(source, parser.messages, stats, clean, None if parser.sidechain else summary)
