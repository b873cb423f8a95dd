"""The opt-in recall hook: relevant past exchanges reach Claude, or nothing does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.calls import reindex
from support.env import env_for, settings_for
from support.home import exchange, write_session
from support.ollama_standin import OllamaStandIn
from support.paths import ROOT
from support.processes import COMMAND, hook, hook_log, server_params
from support.wait import wait_until

from indexer.config import Settings
from indexer.searcher_client import SearcherPaths

CWD = "/home/dev/rocket"
PAST = "why does the booster wobble during ascent"
PAST_ANSWER = "the gimbal PID gains were too high; halving kp stopped the booster wobble"
PARAPHRASE = "the booster wobble in ascent, was it the gimbal PID gains?"
ON = {"SESSION_SEARCH_RECALL": "1", "SESSION_SEARCH_RECALL_DEADLINE": "20"}  # relevance, not speed, on a loaded machine


@pytest.fixture(autouse=True)
def no_searcher_left(tmp_path: Path) -> Iterator[None]:
    """A searcher a test's hook or server started would stay for its idle spell: end it with the test."""
    yield
    for lock in (tmp_path / "data").glob("searcher-*.lock"):
        pid = SearcherPaths(lock.with_suffix(".sock"), lock, lock.with_suffix(".start"), lock.parent / "searcher.log").holder()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)


@pytest.fixture
def settings(ollama: OllamaStandIn, tmp_path: Path) -> Settings:
    projects = tmp_path / "claude" / "projects"
    write_session(projects, CWD, "s-past", exchange("s-past", CWD, PAST, PAST_ANSWER, ts="2026-03-01T10:00:00Z"))
    write_session(
        projects,
        "/home/dev/web",
        "s-css",
        exchange("s-css", "/home/dev/web", "center the login form", "use flexbox on the container", ts="2026-03-02T10:00:00Z"),
    )
    current = exchange(
        "s-now", CWD, "booster wobble during ascent again, gimbal PID gains", "looking at the gimbal", ts="2026-03-05T10:00:00Z"
    )
    write_session(projects, CWD, "s-now", current)
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    anyio.run(reindex, settings)
    return settings


def prompt_payload(settings: Settings, prompt: str, session_id: str = "s-now") -> dict:
    transcript = next(settings.projects_dir.rglob(f"{session_id}.jsonl"), None)
    return {
        "session_id": session_id,
        "transcript_path": str(transcript),
        "cwd": CWD,
        "hook_event_name": "UserPromptSubmit",
        "prompt": prompt,
    }


def recalled(proc) -> str:
    assert proc.returncode == 0 and proc.stderr == ""
    answer = json.loads(proc.stdout)
    assert answer["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    return answer["hookSpecificOutput"]["additionalContext"]


@pytest.mark.slow
def test_a_paraphrase_of_another_sessions_exchange_gets_it_quoted(settings: Settings) -> None:
    proc, _ = hook(
        settings, "UserPromptSubmit", prompt_payload(settings, "the booster wobble in ascent, was it the gimbal PID gains?"), **ON
    )
    block = recalled(proc)
    assert "s-past" in block and "halving kp" in block and "2026-03-01" in block and CWD in block
    assert "read_session" in block and "not instructions" in block
    assert "s-now" not in block  # the current session is never quoted
    assert len(block) <= 2000


@pytest.mark.slow
def test_an_unrelated_prompt_gets_nothing(settings: Settings) -> None:
    proc, _ = hook(
        settings, "UserPromptSubmit", prompt_payload(settings, "write a haskell parser combinator for json numbers"), **ON
    )
    assert proc.returncode == 0 and proc.stdout == ""
    assert "0 past exchanges quoted" in hook_log(settings)


@pytest.mark.slow
def test_recall_off_by_default_prints_nothing_and_reads_nothing(settings: Settings) -> None:
    proc, _ = hook(
        settings, "UserPromptSubmit", prompt_payload(settings, "the booster wobble in ascent, was it the gimbal PID gains?")
    )
    assert proc.returncode == 0 and proc.stdout == "" and "UserPromptSubmit" not in hook_log(settings)


@pytest.fixture
def alike(ollama: OllamaStandIn, tmp_path: Path) -> Settings:
    """Six sessions with the same long answer: a prompt about it is as like each of them."""
    projects = tmp_path / "claude" / "projects"
    long_answer = "the booster wobble came from the gimbal PID gains " * 60
    for n in range(6):
        write_session(projects, CWD, f"s-{n}", exchange(f"s-{n}", CWD, f"booster wobble gimbal PID gains {n}", long_answer))
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")
    anyio.run(reindex, settings)
    return settings


@pytest.mark.slow
def test_context_stays_within_2000_chars_and_three_exchanges(alike: Settings) -> None:
    no_margin = {**ON, "SESSION_SEARCH_RECALL_MIN_MARGIN": "0"}  # the margin gate would quote none of these alike exchanges
    proc, _ = hook(alike, "UserPromptSubmit", prompt_payload(alike, "booster wobble gimbal PID gains", "s-0"), **no_margin)
    block = recalled(proc)
    assert len(block) <= 2000 and block.count("| session s-") == 3 and "session s-0 " not in block


@pytest.mark.slow
def test_a_prompt_as_like_five_past_exchanges_as_the_best_gets_nothing(alike: Settings) -> None:
    proc, _ = hook(alike, "UserPromptSubmit", prompt_payload(alike, "booster wobble gimbal PID gains", "s-0"), **ON)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "0 past exchanges quoted" in hook_log(alike)


@pytest.mark.slow
def test_with_ollama_slow_or_down_it_returns_in_time_and_quotes_nothing(settings: Settings, ollama: OllamaStandIn) -> None:
    ollama.delay_s = 30.0
    on_time = {"SESSION_SEARCH_RECALL": "1"}  # the default deadline
    proc, seconds = hook(
        settings,
        "UserPromptSubmit",
        prompt_payload(settings, "the booster wobble in ascent, was it the gimbal PID gains?"),
        **on_time,
    )
    assert proc.returncode == 0 and proc.stdout == "" and seconds < 3.0
    assert "deadline" in hook_log(settings)
    ollama.reset()
    ollama.down()
    proc, seconds = hook(
        settings,
        "UserPromptSubmit",
        prompt_payload(settings, "the booster wobble in ascent, was it the gimbal PID gains?"),
        **on_time,
    )
    assert proc.returncode == 0 and proc.stdout == "" and seconds < 3.0


@pytest.mark.slow
def test_the_guard_stops_a_hook_started_by_a_hook(settings: Settings) -> None:
    proc, _ = hook(
        settings,
        "UserPromptSubmit",
        prompt_payload(settings, "the booster wobble in ascent, was it the gimbal PID gains?"),
        SESSION_SEARCH_HOOK_CHILD="1",
        **ON,
    )
    assert proc.returncode == 0 and proc.stdout == ""


def imported(proc: subprocess.CompletedProcess) -> str:
    """The modules the hook process imported, from its -X importtime report (PYTHONPROFILEIMPORTTIME) on stderr."""
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("import time:") for line in lines), proc.stderr[-2000:]
    return proc.stderr


def searcher_of(settings: Settings) -> int | None:
    return SearcherPaths.of(settings).holder()


@pytest.mark.slow
def test_with_a_servers_searcher_warm_the_hook_quotes_through_it_without_loading_chromadb(settings: Settings) -> None:
    async def warm_a_searcher() -> None:
        async with Client(server_params(settings)) as client:
            with anyio.fail_after(60):
                found = await client.call_tool("search", {"query": "center the login form", "top_k": 1})
            assert not found.is_error and found.structured_content["results"][0]["session_id"] == "s-css"

    anyio.run(warm_a_searcher)
    warm = searcher_of(settings)
    assert warm is not None  # the server's searcher stays for its idle spell
    proc, _ = hook(settings, "UserPromptSubmit", prompt_payload(settings, PARAPHRASE), PYTHONPROFILEIMPORTTIME="1", **ON)
    block = json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    assert proc.returncode == 0 and "s-past" in block and "halving kp" in block and "s-now" not in block
    modules = imported(proc)
    assert "indexer.searcher_client" in modules and "chromadb" not in modules
    assert searcher_of(settings) == warm  # the server's searcher answered: the hook's recall settings do not key another
    assert len(list(settings.data_dir.glob("searcher-*.lock"))) == 1
    assert "starting one" not in hook_log(settings)


@pytest.mark.slow
def test_with_no_searcher_the_hook_starts_one_detached_and_the_next_prompt_reuses_it(settings: Settings) -> None:
    assert searcher_of(settings) is None
    first, _ = hook(settings, "UserPromptSubmit", prompt_payload(settings, PARAPHRASE), PYTHONPROFILEIMPORTTIME="1", **ON)
    assert "halving kp" in json.loads(first.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "chromadb" not in imported(first)  # the searcher it started loaded the index, not the hook
    assert "no shared searcher was running; starting one" in hook_log(settings)
    started = searcher_of(settings)
    assert started is not None
    searcher_stat = Path(f"/proc/{started}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(searcher_stat[3]) == started  # a session of its own: Claude Code's signals to the hook's group miss it
    # None of the hook's pipes: Claude Code waits for the hook's stdout to close (claude-code#43123)
    assert os.readlink(f"/proc/{started}/fd/1") == "/dev/null"
    assert os.readlink(f"/proc/{started}/fd/2") == str(settings.data_dir / "searcher.log")
    second, _ = hook(settings, "UserPromptSubmit", prompt_payload(settings, PARAPHRASE), PYTHONPROFILEIMPORTTIME="1", **ON)
    assert "halving kp" in json.loads(second.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "chromadb" not in imported(second)
    assert searcher_of(settings) == started and hook_log(settings).count("starting one") == 1


def listening(settings: Settings) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(SearcherPaths.of(settings).socket))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_with_recall_on_session_start_starts_a_searcher_that_outlives_the_servers_idle_spell(settings: Settings) -> None:
    brief = {"SESSION_SEARCH_SEARCHER_IDLE_S": "1"}  # a server's searcher would leave 1 s after its last server
    proc, _ = hook(settings, "SessionStart", {"session_id": "s-now", "source": "startup"}, **brief, **ON)
    assert proc.returncode == 0 and proc.stdout == ""
    assert wait_until(lambda: listening(settings), 60)
    started = searcher_of(settings)
    time.sleep(3)  # prompts come minutes apart: the searcher the hooks started waits for them
    assert searcher_of(settings) == started is not None
    first, _ = hook(
        settings, "UserPromptSubmit", prompt_payload(settings, PARAPHRASE), PYTHONPROFILEIMPORTTIME="1", **brief, **ON
    )
    assert "halving kp" in json.loads(first.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "chromadb" not in imported(first) and "starting one" not in hook_log(settings)


@pytest.mark.slow
def test_the_off_switch_searches_inside_the_hook_and_starts_no_searcher(settings: Settings) -> None:
    proc, _ = hook(
        settings,
        "UserPromptSubmit",
        prompt_payload(settings, PARAPHRASE),
        SESSION_SEARCH_SHARED_SEARCHER="0",
        PYTHONPROFILEIMPORTTIME="1",
        **ON,
    )
    assert "halving kp" in json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "chromadb" in imported(proc)
    assert not list(settings.data_dir.glob("searcher-*")) and "starting one" not in hook_log(settings)


CLAUDE = ROOT / "tests" / "claude" / "node_modules" / ".bin" / "claude"


class _MessagesAPI(BaseHTTPRequestHandler):
    """Anthropic's API as far as this test needs: keep each request's body, refuse it (400)."""

    bodies: list[str]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        answer = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "test"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def messages_api() -> Iterator[tuple[str, list[str]]]:
    bodies: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("API", (_MessagesAPI,), {"bodies": bodies}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def claude_code_asks(settings: Settings, home: Path, api_url: str, *config: str) -> list[dict]:
    """Install the plugin (`--config KEY=VALUE` options) into a fresh Claude Code home, send one prompt; the session's records."""
    env = {
        **env_for(settings.ollama_host, settings.claude_dir, settings.data_dir),
        "HOME": str(home),
        "PATH": f"{Path(COMMAND).parent}:{os.environ['PATH']}",
        "SESSION_SEARCH_RECALL_DEADLINE": "20",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": api_url,
    }
    for args in (["plugin", "marketplace", "add", str(ROOT)], ["plugin", "install", "session-search@session-search", *config]):
        proc = subprocess.run([str(CLAUDE), *args], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    subprocess.run([str(CLAUDE), "-p", PARAPHRASE], capture_output=True, text=True, env=env, cwd=home, timeout=120)
    transcript = next((home / ".claude" / "projects").rglob("*.jsonl"))
    return [json.loads(line) for line in transcript.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.skipif(not CLAUDE.exists(), reason="run `npm ci --prefix tests/claude` first (.ci/run does)")
def test_the_plugins_recall_option_turns_recall_on_in_claude_code(
    settings: Settings, tmp_path: Path, messages_api: tuple[str, list[str]]
) -> None:
    """Claude Code exports the plugin option to the hook (CLAUDE_PLUGIN_OPTION_RECALL); the quote reaches the model's request."""
    api_url, bodies = messages_api
    claude_code_asks(settings, tmp_path / "off", api_url)  # the option left at its default: off
    assert "UserPromptSubmit" not in hook_log(settings)
    assert [b for b in bodies if "gimbal PID gains?" in b] and not any("halving kp" in b for b in bodies)
    bodies.clear()
    records = claude_code_asks(settings, tmp_path / "on", api_url, "--config", "recall=true")
    assert "UserPromptSubmit: recall is on (the plugin's recall option (CLAUDE_PLUGIN_OPTION_RECALL))" in hook_log(settings)
    hook_runs = [
        r["attachment"]
        for r in records
        if r.get("type") == "attachment" and r["attachment"].get("hookEvent") == "UserPromptSubmit"
    ]
    if any(run.get("timedOut") for run in hook_runs):
        pytest.skip(
            "the hook ran with recall on, but passed Claude Code's 5 s hook timeout on this loaded machine: the request was not checked"
        )
    asked = [b for b in bodies if "gimbal PID gains?" in b]
    assert asked and all("halving kp" in b and "s-past" in b for b in asked)
