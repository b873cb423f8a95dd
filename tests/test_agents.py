"""Every agent's sessions in one index: Codex CLI and Gemini CLI beside Claude Code, and what
Claude Code used to drop (prompts typed while a tool ran, queued prompts, titles, injected
reminders, per-exchange project and branch, the workflow layout)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import anyio
import pytest
from support.calls import read, reindex, run_search, stored_ids
from support.env import settings_for
from support.home import append, write_session
from support.ollama_standin import OllamaStandIn
from support.paths import FIXTURE_HOME
from support.processes import cli
from support.wait import wait_until

from indexer.agents import claude_code
from indexer.config import Settings, load_settings
from indexer.errors import ConfigError
from indexer.models import SearchRequest
from indexer.service import SessionSearch

pytestmark = pytest.mark.usefixtures("transcripts")  # they read the shared transcripts

AGENT_FIXTURES = FIXTURE_HOME.parent  # beside claude-home, wherever SESSION_SEARCH_FIXTURES puts it
CODEX_SESSION = "01996135-afde-7911-97f0-d863511eca56"  # Codex 0.39, a real session
CODEX_REDACTED = "019e9625-802f-7e91-840a-cfe88d14117a"  # Codex 0.135, texts redacted upstream
GEMINI_JSON = "f0a689a6-b0ac-407f-afcc-4fafa9e14e8a"  # Gemini CLI chat document
GEMINI_JSONL = "0ab84937-9fe7-4284-986a-33c832af0b6a"  # the newer JSONL chat
GEMINI_REDACTED = "dcbe78d3-ea75-4786-929e-d6cff0fc00ed"
TITLED = "3680252d-d4e3-4416-bddd-8f5b5b4fdb7f"  # a Claude Code session with summary records
QUEUED_FIXTURE = "258c7280-ae70-4798-800f-63464d01a85d"  # Claude Code 2.1.39 with queued prompts


def all_agents(
    url: str, data_dir: Path, claude: Path = FIXTURE_HOME, codex: Path | None = None, gemini: Path | None = None, **extra: str
) -> Settings:
    return settings_for(
        url, claude, data_dir, SESSION_SEARCH_AGENTS="claude-code,codex,gemini-cli",
        SESSION_SEARCH_CODEX_DIR=str(codex or AGENT_FIXTURES / "codex-home"),
        SESSION_SEARCH_GEMINI_DIR=str(gemini or AGENT_FIXTURES / "gemini-home"), **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def agents_index(standin_server: OllamaStandIn, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shared Claude Code, Codex and Gemini CLI sessions in one index. Tests only read it."""
    settings = all_agents(standin_server.url, tmp_path_factory.mktemp("agents-index"))
    anyio.run(reindex, settings)
    return settings


# -- Codex and Gemini CLI ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "session", "agent", "project", "branch", "resume"),
    [
        (
            "go.mod golang python-version 1.24",
            CODEX_SESSION,
            "codex",
            "/proj/ds906659/gai/claude-code",
            "main",
            f"codex resume {CODEX_SESSION}",
        ),
        (
            "create myapp/hoge.py print(1+1)",
            GEMINI_JSON,
            "gemini-cli",
            "/Users/zawakin/agent-sample",
            "",
            f"gemini --resume {GEMINI_JSON}",
        ),
        (
            "AI-Powered Discord Bot nextcord GEMINI.md",
            GEMINI_JSONL,
            "gemini-cli",
            "/home/wei/repo/discordbot",
            "",
            f"gemini --resume {GEMINI_JSONL}",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
async def test_a_phrase_from_each_agents_session_finds_that_session_first(
    agents_index: Settings, query: str, session: str, agent: str, project: str, branch: str, resume: str, mode: str
) -> None:
    hit = (await run_search(agents_index, query=query, mode=mode)).results[0]
    assert (hit.session_id, hit.agent, hit.project, hit.git_branch, hit.resume_command) == (
        session,
        agent,
        project,
        branch,
        resume,
    )


@pytest.mark.parametrize("mode", ["keyword", "vector"])
@pytest.mark.parametrize(
    ("agent", "redacted"), [("codex", CODEX_REDACTED), ("gemini-cli", GEMINI_REDACTED), ("claude-code", None)]
)
async def test_the_agent_filter_keeps_only_that_agents_sessions(
    agents_index: Settings, mode: str, agent: str, redacted: str | None
) -> None:
    query = "create the python file and update the version in the directory"
    everything = await run_search(agents_index, query=query, mode=mode, top_k=50)
    assert {h.agent for h in everything.results} - {agent}, "the unfiltered search must include something the filter removes"
    filtered = await run_search(agents_index, query=query, mode=mode, top_k=50, agent=agent)
    assert filtered.results and {h.agent for h in filtered.results} == {agent}
    # The two redacted fixtures hold the same exchange ("[REDACTED_PROMPT]" and its answer), collapsed
    # into one result unfiltered: the filter shows that agent's copy.
    if redacted:
        copies = await run_search(agents_index, query="REDACTED_PROMPT REDACTED_ASSISTANT_TEXT", mode=mode, agent=agent)
        assert copies.results[0].session_id == redacted


def test_every_agent_has_a_module_a_setting_and_a_name_in_the_public_shapes() -> None:
    from indexer.agents import AGENTS
    from indexer.config import KNOWN_AGENTS
    from indexer.models import SearchHit

    assert tuple(AGENTS) == KNOWN_AGENTS
    assert set(load_settings(environ={"SESSION_SEARCH_AGENTS": ",".join(KNOWN_AGENTS)}).agent_folders) == set(AGENTS)
    assert set(SearchHit.model_json_schema()["properties"]["agent"]["enum"]) == set(AGENTS)


def test_an_unknown_agent_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="claude-code"):
        SearchRequest(query="x", agent="cursor")


async def test_model_info_names_the_agents_and_their_folders(agents_index: Settings) -> None:
    async with SessionSearch(agents_index) as index:
        info = await index.info()
    assert info.agents == {
        "claude-code": str(FIXTURE_HOME / "projects"), "codex": str(AGENT_FIXTURES / "codex-home"),
        "gemini-cli": str(AGENT_FIXTURES / "gemini-home" / "tmp"),
    }  # fmt: skip
    assert info.changed_files == 0


async def test_read_session_reads_codex_and_gemini_sessions(agents_index: Settings) -> None:
    codex = await read(agents_index, session_id=CODEX_SESSION, limit=5)
    assert codex.agent == "codex" and codex.resume_command == f"codex resume {CODEX_SESSION}"
    assert codex.project == "/proj/ds906659/gai/claude-code" and codex.note is None
    assert codex.messages[0].role == "user" and "go.mod" in codex.messages[0].text
    gemini = await read(agents_index, session_id=GEMINI_JSON, limit=20)
    assert gemini.agent == "gemini-cli" and [m.role for m in gemini.messages][:3] == ["user", "assistant", "tool"]
    assert gemini.messages[0].text.startswith("add myapp directory")


def test_codex_injected_context_and_event_copies_are_not_indexed() -> None:
    source = next(s for s in claude_code_free_sources("codex") if CODEX_SESSION in s.rel_path)
    from indexer.parse import parse_file

    texts = [m.text for m in parse_file(source).messages]
    assert not any("<environment_context>" in t for t in texts)
    prompts = [t for t in texts if "## My request for Codex" in t]
    assert len(prompts) == 1  # the event_msg copy of the prompt is not indexed again


def claude_code_free_sources(agent: str):
    from indexer.agents import discover_sources

    folders = {"codex": AGENT_FIXTURES / "codex-home", "gemini-cli": AGENT_FIXTURES / "gemini-home" / "tmp"}
    return list(discover_sources({agent: folders[agent]}))


# -- settings ------------------------------------------------------------------------------------


def test_agents_default_to_those_whose_folder_exists(tmp_path: Path) -> None:
    (tmp_path / "codex").mkdir()
    env = {"HOME": str(tmp_path), "SESSION_SEARCH_CLAUDE_DIR": str(tmp_path / "no-claude"), "CODEX_HOME": str(tmp_path / "codex")}
    settings = load_settings(environ=env, gemini_dir=tmp_path / "no-gemini")
    assert settings.codex_dir == tmp_path / "codex"
    assert list(settings.agent_folders) == ["codex"]
    (tmp_path / "no-gemini").mkdir()
    assert list(settings.agent_folders) == ["codex", "gemini-cli"]  # an agent installed later is picked up
    named = load_settings(environ={**env, "SESSION_SEARCH_AGENTS": "gemini-cli, claude-code"})
    assert list(named.agent_folders) == ["claude-code", "gemini-cli"]


@pytest.mark.parametrize("value", ["codex,cursor", "claude"])
def test_an_unknown_agent_is_a_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"SESSION_SEARCH_AGENTS: .*unknown agent .*claude-code, codex, gemini-cli"):
        load_settings(environ={"SESSION_SEARCH_AGENTS": value})


# -- the same rules for every agent ------------------------------------------------------------


def codex_rollout(codex_home: Path, session: str, cwd: str, turns: list[tuple[str, str]], branch: str = "main") -> Path:
    path = codex_home / "sessions" / "2026" / "03" / "01" / f"rollout-2026-03-01T10-00-00-{session}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "timestamp": "2026-03-01T10:00:00Z",
            "type": "session_meta",
            "payload": {"id": session, "cwd": cwd, "git": {"branch": branch}},
        }
    ]
    for prompt, answer in turns:
        lines += codex_turn(prompt, answer)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def codex_turn(prompt: str, answer: str, cwd: str | None = None) -> list[dict]:
    ts = "2026-03-01T10:00:01Z"
    context = [{"timestamp": ts, "type": "turn_context", "payload": {"cwd": cwd, "model": "gpt-5"}}] if cwd else []
    return [
        {"timestamp": ts, "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}},
        *context,
        {"timestamp": ts, "type": "event_msg", "payload": {"type": "user_message", "message": prompt}},
        {"timestamp": ts, "type": "response_item", "payload": {"type": "function_call", "name": "shell", "call_id": "c1",
                                                               "arguments": json.dumps({"command": ["bash", "-lc", "ls"]})}},
        {"timestamp": ts, "type": "response_item", "payload": {"type": "function_call_output", "call_id": "c1",
                                                               "output": json.dumps({"output": "README.md", "metadata": {"exit_code": 0}})}},
        {"timestamp": ts, "type": "response_item", "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}},
    ]  # fmt: skip


def gemini_chat(gemini_home: Path, project: str, session: str, prompt: str, tool_output: str) -> Path:
    import hashlib

    digest = hashlib.sha256(project.encode()).hexdigest()
    path = gemini_home / "tmp" / digest / "chats" / f"session-2026-03-01T10-00-{session[:8]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    call = {"id": "t1", "name": "read_file", "args": {"absolute_path": f"{project}/notes.md"}, "status": "success",
            "result": [{"functionResponse": {"id": "t1", "name": "read_file", "response": {"output": tool_output}}}]}  # fmt: skip
    document = {
        "sessionId": session, "projectHash": digest, "startTime": "2026-03-01T10:00:00Z", "lastUpdated": "2026-03-01T10:01:00Z",
        "summary": "Notes review",
        "messages": [
            {"id": "m1", "timestamp": "2026-03-01T10:00:00Z", "type": "user", "content": prompt},
            {"id": "m2", "timestamp": "2026-03-01T10:00:05Z", "type": "gemini", "content": "Reading the notes.", "toolCalls": [call]},
        ],
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    claude = tmp_path / "claude"
    (claude / "projects").mkdir(parents=True)
    return {"claude": claude, "codex": tmp_path / "codex", "gemini": tmp_path / "gemini"}


def own_agents(url: str, homes: dict[str, Path], data: Path, **extra: str) -> Settings:
    return all_agents(url, data, homes["claude"], homes["codex"], homes["gemini"], **extra)


async def test_secrets_are_redacted_in_every_agent(ollama: OllamaStandIn, homes: dict[str, Path], tmp_path: Path) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    codex_rollout(homes["codex"], "c0000000-0000-0000-0000-000000000001", "/w/api", [(f"deploy with {token} please", "deployed")])
    gemini_chat(homes["gemini"], "/w/site", "g0000000-0000-0000-0000-000000000001", "read my notes", f"GITHUB_TOKEN={token}")
    settings = own_agents(ollama.url, homes, tmp_path / "data")
    await reindex(settings)
    assert not any(token in text for text in ollama.embedded_inputs)
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    hits = (await run_search(settings, query="deploy with please", mode="keyword", agent="codex")).results
    assert "[REDACTED:github_token]" in hits[0].snippet


async def test_skip_marker_and_exclusion_globs_apply_to_every_agent(
    ollama: OllamaStandIn, homes: dict[str, Path], tmp_path: Path
) -> None:
    codex_rollout(
        homes["codex"], "c0000000-0000-0000-0000-000000000002", "/w/api", [("session-search: skip this orchid plan", "ok")]
    )
    codex_rollout(homes["codex"], "c0000000-0000-0000-0000-000000000003", "/w/api", [("the tulip plan", "ok")])
    gemini_chat(homes["gemini"], "/w/private", "g0000000-0000-0000-0000-000000000002", "the lily plan", "lily notes")
    gemini_chat(homes["gemini"], "/w/public", "g0000000-0000-0000-0000-000000000003", "the rose plan", "rose notes")
    settings = own_agents(ollama.url, homes, tmp_path / "data", SESSION_SEARCH_EXCLUDE="/w/private*")
    await reindex(settings)
    found = {
        h.session_id for h in (await run_search(settings, query="orchid tulip lily rose plan", mode="keyword", top_k=20)).results
    }
    assert found == {"c0000000-0000-0000-0000-000000000003", "g0000000-0000-0000-0000-000000000003"}


async def test_codex_and_gemini_sessions_are_indexed_incrementally_and_kept_after_deletion(
    ollama: OllamaStandIn, homes: dict[str, Path], tmp_path: Path
) -> None:
    rollout = codex_rollout(
        homes["codex"], "c0000000-0000-0000-0000-000000000004", "/w/api", [("why is the quokka queue slow", "too few workers")]
    )
    chat = gemini_chat(
        homes["gemini"], "/w/site", "g0000000-0000-0000-0000-000000000004", "summarise the wombat notes", "wombat facts"
    )
    settings = own_agents(ollama.url, homes, tmp_path / "data")
    await reindex(settings)
    again = await reindex(settings)
    assert again.files_indexed == 0 and again.chunks_added == 0
    before = len(ollama.embedded_inputs)
    append(rollout, codex_turn("and the numbat cache", "add a TTL"))
    report = await reindex(settings)
    sent = ollama.embedded_inputs[before:]
    assert report.files_indexed == 1 and len(sent) == 1 and "numbat" in sent[0]
    rollout.unlink()
    chat.unlink()
    kept = await reindex(settings)
    assert kept.chunks_removed == 0
    for query, session in (
        ("quokka queue", "c0000000-0000-0000-0000-000000000004"),
        ("wombat notes", "g0000000-0000-0000-0000-000000000004"),
    ):
        hit = (await run_search(settings, query=query, mode="keyword")).results[0]
        assert hit.session_id == session
        page = await read(settings, session_id=session)
        assert page.messages and page.note and "deleted" in page.note and page.agent == hit.agent


async def test_a_codex_turn_takes_the_cwd_of_its_own_turn_context(
    ollama: OllamaStandIn, homes: dict[str, Path], tmp_path: Path
) -> None:
    rollout = codex_rollout(
        homes["codex"], "c0000000-0000-0000-0000-000000000005", "/w/api", [("profile the marmot endpoint", "it was N+1")]
    )
    append(rollout, codex_turn("restyle the meerkat page", "done", cwd="/w/web"))
    settings = own_agents(ollama.url, homes, tmp_path / "data")
    await reindex(settings)
    first = (await run_search(settings, query="marmot endpoint", mode="keyword")).results[0]
    second = (await run_search(settings, query="meerkat page", mode="keyword", project="/w/web")).results[0]
    assert (first.project, first.git_branch, second.project, second.session_id) == ("/w/api", "main", "/w/web", first.session_id)
    assert (await run_search(settings, query="marmot endpoint", mode="keyword", project="/w/web")).results == []


@pytest.mark.slow
def test_a_reindex_of_every_agent_killed_midway_then_resumed_equals_a_clean_build(
    ollama: OllamaStandIn, tmp_path: Path, agents_index: Settings
) -> None:
    ollama.delay_s = 0.08  # a slow embedder, so the kill lands mid-run
    settings = all_agents(ollama.url, tmp_path / "data")
    env = {
        "PATH": "/usr/bin:/bin", "OLLAMA_HOST": ollama.url, "SESSION_SEARCH_EMBED_BATCH_SIZE": "8", "SESSION_SEARCH_REFRESH_MINUTES": "0",
        "SESSION_SEARCH_CLAUDE_DIR": str(settings.claude_dir), "SESSION_SEARCH_DATA_DIR": str(settings.data_dir),
        "SESSION_SEARCH_CODEX_DIR": str(settings.codex_dir), "SESSION_SEARCH_GEMINI_DIR": str(settings.gemini_dir),
        "SESSION_SEARCH_AGENTS": "claude-code,codex,gemini-cli",
    }  # fmt: skip
    calls = ollama.embed_calls
    proc = cli(env)
    wait_until(lambda: ollama.embed_calls - calls >= 10, 120)  # mid-run: the embedder has answered ten batches
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ollama.delay_s = 0
    resumed = cli(env, "--json")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert stored_ids(settings.data_dir) == stored_ids(agents_index.data_dir)


# -- Claude Code: what used to be dropped --------------------------------------------------------

SESSION = "cc000000-0000-0000-0000-000000000001"
BASE = {
    "sessionId": SESSION,
    "cwd": "/work/api",
    "gitBranch": "main",
    "timestamp": "2026-03-01T10:00:00Z",
    "isSidechain": False,
    "version": "2.1.30",
}


def user(uuid: str, content: object, **fields: object) -> dict:
    return {**BASE, **fields, "type": "user", "uuid": uuid, "message": {"role": "user", "content": content}}


def assistant(uuid: str, text: str, tool: str | None = None, **fields: object) -> dict:
    blocks: list[dict] = [{"type": "text", "text": text}]
    if tool:
        blocks.append({"type": "tool_use", "id": tool, "name": "Bash", "input": {"command": "pytest -q"}})
    return {
        **BASE,
        **fields,
        "type": "assistant",
        "uuid": uuid,
        "message": {"id": f"msg-{uuid}", "role": "assistant", "content": blocks},
    }


def queue(operation: str, content: str | None = None) -> dict:
    record = {"type": "queue-operation", "operation": operation, "timestamp": "2026-03-01T10:00:02Z", "sessionId": SESSION}
    return {**record, "content": content} if content is not None else record


async def index_claude(ollama: OllamaStandIn, tmp_path: Path, records: list[dict], project: str = "/work/api") -> Settings:
    write_session(tmp_path / "claude" / "projects", project, SESSION, records)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    return settings


async def found(settings: Settings, query: str, **filters: object):
    results = (await run_search(settings, query=query, mode="keyword", **filters)).results
    return next((h for h in results if query.split()[0].lower() in h.snippet.lower()), None)


async def test_a_prompt_typed_while_a_tool_ran_is_found(ollama: OllamaStandIn, tmp_path: Path) -> None:
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "12 passed"}
    records = [
        user("u1", "run the tests"), assistant("a1", "Running them.", tool="t1"),
        user("u2", [result, {"type": "text", "text": "is there no library to do UUID validation??"}], gitBranch="feature/uuid"),
        assistant("a2", "There is: the uuid module parses and validates.", gitBranch="feature/uuid"),
    ]  # fmt: skip
    settings = await index_claude(ollama, tmp_path, records)
    hit = await found(settings, "library UUID validation")
    assert hit is not None and (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/api", "feature/uuid")
    assert "uuid module parses" in hit.snippet  # the prompt opens an exchange with the answer it got
    tests_hit = await found(settings, "12 passed")
    assert tests_hit is not None and "UUID validation" not in tests_hit.snippet


async def test_queued_prompts_drained_by_remove_or_pop_all_are_found_once(ollama: OllamaStandIn, tmp_path: Path) -> None:
    records = [
        user("u1", "refactor the billing module"), assistant("a1", "Working on it.", tool="t1"),
        queue("enqueue", "also keep the invoice numbering stable"), queue("remove"),
        user("u2", [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]),
        assistant("a2", "Invoice numbers now come from a sequence."),
        queue("enqueue", "and rename the ledger table"), queue("enqueue", "plus document the cron schedule"), queue("popAll"),
        assistant("a3", "Renamed it to journal and documented the cron."),
        queue("enqueue", "check the refund path too"), queue("dequeue"),
        user("u3", "check the refund path too"), assistant("a4", "Refunds reuse the invoice sequence."),
    ]  # fmt: skip
    settings = await index_claude(ollama, tmp_path, records)
    for query in ("invoice numbering stable", "rename ledger table", "document cron schedule"):
        hit = await found(settings, query)
        assert hit is not None and (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/api", "main"), query
    hit = await found(settings, "invoice numbering stable")
    assert "sequence" in hit.snippet  # with the answer Claude gave it
    refund = (await run_search(settings, query="check the refund path too", mode="keyword", top_k=20)).results
    assert sum("User: check the refund path too" in h.snippet for h in refund) == 1  # the dequeued one is its user record only


async def test_a_queued_command_attachment_is_found(ollama: OllamaStandIn, tmp_path: Path) -> None:
    attachment = {**BASE, "type": "attachment", "uuid": "q1", "gitBranch": "release",
                  "attachment": {"type": "queued_command", "commandMode": "prompt", "origin": {"kind": "human"},
                                 "prompt": "make the retries exponential"}}  # fmt: skip
    peer = {
        **attachment,
        "uuid": "q2",
        "attachment": {**attachment["attachment"], "origin": {"kind": "peer"}, "prompt": "a peer wombat message"},
    }
    records = [
        user("u1", "fix the webhook sender"), assistant("a1", "On it.", tool="t1"),
        queue("enqueue", "make the retries exponential"), attachment, peer, queue("remove", None),
        assistant("a2", "Retries now back off exponentially.", gitBranch="release"),
    ]  # fmt: skip
    settings = await index_claude(ollama, tmp_path, records)
    hit = await found(settings, "retries exponential")
    assert hit is not None and (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/api", "release")
    matches = (await run_search(settings, query="make the retries exponential", mode="keyword", top_k=20)).results
    assert sum("User: make the retries exponential" in h.snippet for h in matches) == 1
    assert await found(settings, "wombat") is None  # another session's message is not what the person typed


async def test_a_sessions_title_is_shown_and_found(ollama: OllamaStandIn, tmp_path: Path) -> None:
    records = [
        user("u1", "tune the database"), assistant("a1", "Raised shared_buffers."),
        {"type": "ai-title", "aiTitle": "Database tuning", "sessionId": SESSION},
        {"type": "custom-title", "customTitle": "Postgres capybara tuning", "sessionId": SESSION},
        {"type": "ai-title", "aiTitle": "Database tuning, part two", "sessionId": SESSION},
    ]  # fmt: skip
    settings = await index_claude(ollama, tmp_path, records)
    hit = await found(settings, "capybara")  # a word only the title has
    assert hit is not None and hit.title == "Postgres capybara tuning"
    assert (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/api", "main")
    other = (await run_search(settings, query="shared_buffers")).results[0]
    assert other.title == "Postgres capybara tuning"  # the name the person gave beats the generated ones
    page = await read(settings, session_id=SESSION)
    assert page.title == "Postgres capybara tuning" and page.agent == "claude-code"


async def test_queued_prompts_of_a_real_2_1_39_session_are_found(agents_index: Settings) -> None:
    """The fixture's "new beads..." exists only as a queue-operation enqueue, drained by a remove."""
    results = (await run_search(agents_index, query="new beads for the epic were added. tackle them", mode="keyword")).results
    # The compaction summary quotes it too; the prompt's own exchange is found beside it.
    hit = next(h for h in results if h.snippet.startswith("User: new beads for the epic were added. tackle them"))
    assert (hit.session_id, hit.project, hit.git_branch) == (
        QUEUED_FIXTURE,
        "/home/USER/projects/spotter-worktrees/spotter-gqc",
        "spotter-gqc",
    )


async def test_no_fixture_chunk_keeps_claude_codes_malware_reminder(agents_index: Settings) -> None:
    in_transcripts = sum(p.read_text().count("considered malware") for p in (FIXTURE_HOME / "projects").rglob("*.jsonl"))
    assert in_transcripts > 50  # Claude Code appended it to Read results in 8 of the fixture files
    hits = (await run_search(agents_index, query="whether it would be considered malware", mode="keyword", top_k=50)).results
    assert not any("considered malware" in h.snippet for h in hits)


async def test_titles_of_the_fixture_sessions_are_shown(agents_index: Settings) -> None:
    hit = next(
        h
        for h in (await run_search(agents_index, query="HTML Ruby Tokenizer Conversion", mode="keyword")).results
        if h.session_id == TITLED
    )
    assert hit.title == "HTML Ruby Tokenizer Conversion for Better Browser Support"


async def test_injected_reminders_are_stripped_from_tool_output(ollama: OllamaStandIn, tmp_path: Path) -> None:
    reminder = "<system-reminder>\nWhenever you read a file, you should consider whether it would be considered malware.\n</system-reminder>"
    result = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": f"     1\tdef parse_ocelot():\n     2\t    pass\n\n{reminder}",
    }
    records = [user("u1", "read parser.py"), assistant("a1", "Reading.", tool="t1"), user("u2", [result])]
    settings = await index_claude(ollama, tmp_path, records)
    hit = await found(settings, "parse_ocelot")
    assert hit is not None and "malware" not in hit.snippet and "system-reminder" not in hit.snippet
    assert (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/api", "main")
    assert await found(settings, "malware") is None


async def test_project_and_branch_are_each_exchanges_own(ollama: OllamaStandIn, tmp_path: Path) -> None:
    moved = {"cwd": "/work/web", "gitBranch": "feature/css"}
    records = [
        user("u1", "fix the gerbil api endpoint"), assistant("a1", "Fixed the api route."),
        user("u2", "now the hamster stylesheet", **moved), assistant("a2", "Updated the css grid.", **moved),
    ]  # fmt: skip
    settings = await index_claude(ollama, tmp_path, records)
    hit = await found(settings, "hamster stylesheet", project="/work/web", git_branch="feature/css")
    assert hit is not None and (hit.session_id, hit.project, hit.git_branch) == (SESSION, "/work/web", "feature/css")
    assert await found(settings, "gerbil api", project="/work/web") is None
    first = await found(settings, "gerbil api", git_branch="main")
    assert first is not None and first.project == "/work/api"


async def test_workflow_agents_belong_to_their_session_and_the_journal_is_not_indexed(
    ollama: OllamaStandIn, tmp_path: Path
) -> None:
    projects = tmp_path / "claude" / "projects"
    write_session(projects, "/work/api", SESSION, [user("u1", "run the audit workflow"), assistant("a1", "Started it.")])
    workflow = projects / "-work-api" / SESSION / "subagents" / "workflows" / "wf-7"
    workflow.mkdir(parents=True)
    no_session = {k: v for k, v in BASE.items() if k != "sessionId"}
    agent = [
        {**no_session, "type": "user", "uuid": "w1", "isSidechain": True, "message": {"role": "user", "content": "audit the okapi permissions"}},
        {**no_session, "type": "assistant", "uuid": "w2", "isSidechain": True,
         "message": {"id": "m-w2", "role": "assistant", "content": [{"type": "text", "text": "Three okapi roles are too broad."}]}},
    ]  # fmt: skip
    (workflow / "agent-a77.jsonl").write_text("".join(json.dumps(r) + "\n" for r in agent))
    (workflow / "journal.jsonl").write_text(json.dumps({"type": "step", "text": "journal-only pangolin entry"}) + "\n")
    assert [s.rel_path.rsplit("/", 1)[-1] for s in claude_code.discover(projects)] == [f"{SESSION}.jsonl", "agent-a77.jsonl"]
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    await reindex(settings)
    hit = await found(settings, "okapi permissions")
    assert hit is not None and (hit.session_id, hit.agent_id, hit.project, hit.git_branch) == (
        SESSION,
        "a77",
        "/work/api",
        "main",
    )
    assert await found(settings, "pangolin") is None
    page = await read(settings, session_id=SESSION, agent_id="a77")
    assert "okapi" in page.messages[0].text


# -- format details of the new agents ------------------------------------------------------------


def test_a_gemini_jsonl_chat_applies_rewrites_patches_and_rewinds(tmp_path: Path) -> None:
    from indexer.agents import gemini_cli

    chats = tmp_path / "tmp" / "my-project" / "chats"
    chats.mkdir(parents=True)
    (chats.parent / ".project_root").write_text("/home/me/my-project\n")
    lines = [
        {"sessionId": "g-1", "projectHash": "my-project", "startTime": "2026-03-01T10:00:00Z", "kind": "main"},
        {"id": "m1", "timestamp": "2026-03-01T10:00:01Z", "type": "user", "content": [{"text": "plan the ferret migration"}]},
        {"id": "m2", "timestamp": "2026-03-01T10:00:02Z", "type": "gemini", "content": ""},
        {"$set": {"lastUpdated": "2026-03-01T10:00:03Z"}},
        {"id": "m2", "timestamp": "2026-03-01T10:00:02Z", "type": "gemini", "content": "Three steps, final version."},
        {"id": "m3", "timestamp": "2026-03-01T10:00:04Z", "type": "user", "content": "no wait, use the badger approach"},
        {"id": "m4", "timestamp": "2026-03-01T10:00:05Z", "type": "gemini", "content": "Badger it is."},
        {"$rewindTo": "m3"},
        {"id": "m5", "timestamp": "2026-03-01T10:00:06Z", "type": "info", "content": "Request cancelled."},
        {"$set": {"summary": "Ferret migration plan"}},
    ]  # fmt: skip
    path = chats / "session-2026-03-01T10-00-g1abcdef.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    source = gemini_cli.describe(path, tmp_path / "tmp")
    transcript = gemini_cli.parse(source)
    assert [(m.role, m.text, m.line_start) for m in transcript.messages] == [
        ("user", "plan the ferret migration", 2), ("assistant", "Three steps, final version.", 3),
    ]  # fmt: skip
    assert {m.cwd for m in transcript.messages} == {"/home/me/my-project"} and transcript.title == "Ferret migration plan"
    assert transcript.messages[0].session_id == "g-1" and source.rel_path.startswith("gemini-cli:my-project/chats/")


def test_a_codex_compaction_summary_a_failed_command_and_the_thread_name_are_kept(tmp_path: Path) -> None:
    from indexer.agents import codex

    lines = [
        {"timestamp": "t", "type": "session_meta", "payload": {"id": "c-1", "cwd": "/w"}},
        {"timestamp": "t", "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run the lemur tests"}]}},
        {"timestamp": "t", "type": "response_item", "payload": {"type": "function_call", "name": "shell", "call_id": "k", "arguments": "{\"command\":[\"bash\",\"-lc\",\"pytest -x\"]}"}},
        {"timestamp": "t", "type": "response_item", "payload": {"type": "function_call_output", "call_id": "k", "output": "{\"output\":\"1 failed\",\"metadata\":{\"exit_code\":1}}"}},
        {"timestamp": "t", "type": "compacted", "payload": {"message": "We ran the lemur tests; one failed."}},
        {"timestamp": "t", "type": "response_item", "payload": {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"}},
    ]  # fmt: skip
    path = tmp_path / "sessions" / "rollout-2026-03-01T10-00-00-c0000000-0000-0000-0000-00000000000c.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    index = [
        {"id": "c-1", "thread_name": "first name", "updated_at": "t1"},
        {"id": "c-1", "thread_name": "Lemur test run", "updated_at": "t2"},
    ]
    (tmp_path / "session_index.jsonl").write_text("".join(json.dumps(e) + "\n" for e in index))
    transcript = codex.parse(codex.describe(path, tmp_path), tool_output_chars=0)
    assert transcript.title == "Lemur test run"  # the newest entry of the session index
    assert [(m.role, m.text) for m in transcript.messages] == [
        ("user", "run the lemur tests"), ("assistant", "[shell] pytest -x"), ("tool", "[shell error] 1 failed"),
        ("summary", "We ran the lemur tests; one failed."),
    ]  # fmt: skip
