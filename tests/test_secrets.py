"""Secrets never reach the index: 60 planted secrets in prompts, tool inputs, tool outputs and
subagent transcripts, then every byte under the data dir is scanned for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.calls import reindex, search
from support.env import settings_for
from support.home import write_session
from support.ollama_standin import OllamaStandIn
from support.secrets_corpus import FALSE_POSITIVE_SAMPLES, PLANTED

from indexer.config import Settings
from indexer.models import ReadSessionRequest
from indexer.service import SessionSearch

CWD = "/home/dev/vault"
BASE = {"cwd": CWD, "gitBranch": "main", "timestamp": "2026-05-01T10:00:00Z", "version": "2.1.0"}


def _user(session: str, n: int, content: object, **extra: object) -> dict:
    return {
        **BASE,
        **extra,
        "type": "user",
        "sessionId": session,
        "uuid": f"{session}-u{n}",
        "message": {"role": "user", "content": content},
    }


def _assistant(session: str, n: int, blocks: list[dict], **extra: object) -> dict:
    message = {"id": f"msg-{session}-{n}", "role": "assistant", "content": blocks}
    return {**BASE, **extra, "type": "assistant", "sessionId": session, "uuid": f"{session}-a{n}", "message": message}


def planted_records(session: str, start: int, secrets: list, *, sidechain: bool = False) -> list[dict]:
    """Each secret once, in turn as a prompt, a Bash command, a tool result and an assistant answer."""
    extra = {"isSidechain": True} if sidechain else {}
    records: list[dict] = []
    for n, secret in enumerate(secrets, start=start):
        place = n % 4
        if place == 0:
            records.append(_user(session, n, f"{secret.text}\nwhat is wrong here?", **extra))
        elif place == 1:
            tool = {"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": {"command": secret.text, "description": "run it"}}
            records += [_user(session, n, "run it please", **extra), _assistant(session, n, [tool], **extra)]
        elif place == 2:
            # Padding puts the secret across the tool-output cap (400 characters below).
            output = "x" * 380 + " " + secret.text
            result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": output}
            records += [_user(session, n, "check the logs", **extra), _user(session, n + 1000, [result], **extra)]
        else:
            records += [
                _user(session, n, "show me the config", **extra),
                _assistant(session, n, [{"type": "text", "text": secret.text}], **extra),
            ]
    return records


@pytest.fixture
def secret_home(tmp_path: Path) -> Path:
    projects = tmp_path / "claude" / "projects"
    half = len(PLANTED) // 2
    main = write_session(projects, CWD, "s-main", planted_records("s-main", 0, PLANTED[:half]))
    subagents = main.with_suffix("") / "subagents"
    subagents.mkdir(parents=True)
    lines = planted_records("s-main", half, PLANTED[half:], sidechain=True)
    (subagents / "agent-a1b2c3d.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return tmp_path / "claude"


def fragments(value: str) -> list[bytes]:
    """The secret, and a 16-character piece of its middle: a partial leak counts too."""
    middle = len(value) // 2
    return [value.encode(), *([value[middle - 8 : middle + 8].encode()] if len(value) >= 24 else [])]


async def test_no_planted_secret_is_anywhere_under_the_data_dir(ollama: OllamaStandIn, secret_home: Path, tmp_path: Path) -> None:
    assert len(PLANTED) >= 30
    settings = settings_for(ollama.url, secret_home, tmp_path / "data", SESSION_SEARCH_TOOL_OUTPUT_CHARS="400")
    report = await reindex(settings)
    assert report.chunks_added > 10
    found = await search(settings, "what is wrong here config logs", top_k=50)
    assert found  # the turns are indexed and searchable, only their secrets are gone
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files) and any(p.name == "ledger.sqlite" for p in files)
    leaks = [
        (secret.kind, path.name)
        for path in files
        for secret in PLANTED
        if any(piece in path.read_bytes() for piece in fragments(secret.value))
    ]
    assert leaks == []
    for secret in PLANTED:  # nor in what the embedder was sent
        assert not any(secret.value in text for text in ollama.embedded_inputs), secret.kind


async def test_read_session_shows_the_transcript_redacted(ollama: OllamaStandIn, secret_home: Path, tmp_path: Path) -> None:
    settings = settings_for(ollama.url, secret_home, tmp_path / "data")
    await reindex(settings)
    async with SessionSearch(settings) as index:
        page = await index.read_session(ReadSessionRequest(session_id="s-main", limit=100))
    shown = page.model_dump_json()
    assert "[REDACTED:" in shown
    assert not any(secret.value in shown for secret in PLANTED)


async def test_ordinary_identifiers_survive_and_stay_searchable(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    records = [_user("s-fp", n, text) for n, text in enumerate(FALSE_POSITIVE_SAMPLES)]
    write_session(projects, CWD, "s-fp", records)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    async with SessionSearch(settings) as index:
        stored = index.ledger.session_docs(index._serving().record.name, "s-fp")
    text = "\n".join(doc.text for doc in stored)
    assert "[REDACTED:" not in text
    assert await search(settings, "token_count max_tokens", mode="keyword")


def _session_marked_skip(projects: Path) -> None:
    """s-private, marked `session-search: skip`, and a subagent transcript of it."""
    main = write_session(
        projects,
        CWD,
        "s-private",
        [_user("s-private", 0, "session-search: skip\nmy medical notes"), _user("s-private", 1, "more private text")],
    )
    (main.with_suffix("") / "subagents").mkdir(parents=True)
    (main.with_suffix("") / "subagents" / "agent-abc1234.jsonl").write_text(
        json.dumps(_user("s-private", 5, "private subagent work", isSidechain=True)) + "\n"
    )


async def test_a_session_marked_skip_is_not_indexed_nor_its_subagents(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    _session_marked_skip(projects)
    write_session(projects, CWD, "s-public", [_user("s-public", 0, "public question about medical billing code")])
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    assert await search(settings, "medical private subagent work notes", top_k=20) == ["s-public"]


async def test_a_dry_run_counts_what_a_real_run_indexes_leaving_out_skipped_and_excluded_sessions(
    ollama: OllamaStandIn, tmp_path: Path
) -> None:
    projects = tmp_path / "claude" / "projects"
    _session_marked_skip(projects)
    write_session(projects, CWD, "s-diary", [_user("s-diary", 0, "quarterly diary entry")])
    write_session(
        projects,
        CWD,
        "s-public",
        [_user("s-public", 0, "public question about medical billing code"), _user("s-public", 1, "and the refund code")],
    )
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_EXCLUDE="s-diary")

    dry = await reindex(settings, dry_run=True)
    assert not settings.data_dir.exists()  # a dry run writes nothing
    real = await reindex(settings)
    assert real.chunks_added == 2  # s-public's two prompts: nothing of s-private (nor its subagent) or s-diary
    assert (dry.files_indexed, dry.chunks_added) == (real.files_indexed, real.chunks_added)


async def test_excluded_projects_and_sessions_are_not_indexed(ollama: OllamaStandIn, tmp_path: Path) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(
        projects,
        "/home/dev/client-secret-work",
        "s-client",
        [_user("s-client", 0, "quarterly numbers for the client", cwd="/home/dev/client-secret-work")],
    )
    write_session(projects, CWD, "s-diary", [_user("s-diary", 0, "quarterly diary entry")])
    write_session(projects, CWD, "s-ok", [_user("s-ok", 0, "quarterly release plan")])
    settings: Settings = settings_for(
        ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_EXCLUDE="/home/dev/client-*,s-diary"
    )
    await reindex(settings)
    assert await search(settings, "quarterly", top_k=20) == ["s-ok"]
