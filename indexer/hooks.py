"""`session-search hook <event>`: Claude Code hooks that keep the index fresh.

    SessionStart  starts a detached catch-up reindex (and, with recall on, the shared searcher) and returns at once
    Stop          indexes the new lines of the session that just answered
    UserPromptSubmit  with recall on, quotes past exchanges like the prompt (indexer/recall.py),
                      searched in the shared searcher (started detached when none runs)

Both print nothing (on Stop, output or exit code 2 would make Claude continue; on
SessionStart, stdout would be read as context), always exit 0, and write what went wrong
to <data dir>/hooks.log instead. The detached reindex gets no pipe of Claude Code's (a
child holding the hook's stdout open is what hangs Claude Code, claude-code#43123), runs in
its own session, and exits when its work is done. It never waits for the writer lock:
another writer means the index is being updated already.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.config import Settings, load_settings
from indexer.errors import IndexBusy, SessionSearchError

if TYPE_CHECKING:
    from indexer.models import SearchRequest, SearchResponse

GUARD = "SESSION_SEARCH_HOOK_CHILD"  # set in what a hook starts, so nothing it starts runs a hook again
LOG_NAME = "hooks.log"
PLUGIN_RECALL_OPTION = "CLAUDE_PLUGIN_OPTION_RECALL"
SEARCHER_POLL_S = 0.02  # while a searcher this hook started comes up
# A searcher the hook starts outlives the pause between two prompts (servers keep theirs connected).
RECALL_SEARCHER_IDLE_S = 1800.0
log = logging.getLogger("session_search.hooks")


def _log_to_file(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(data_dir / LOG_NAME, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _read_event(stdin: Any) -> dict[str, Any]:
    try:
        event = json.loads(stdin.read() or "{}")
    except ValueError:
        log.warning("hook input is not JSON; ignored")
        return {}
    return event if isinstance(event, dict) else {}


def _detached(settings: Settings, module_args: list[str], stdin: int) -> subprocess.Popen[bytes]:
    """`python -m <module_args>` in its own session, its output to hooks.log: no pipe of Claude
    Code's stays open in it (a child holding the hook's stdout hangs Claude Code, claude-code#43123)."""
    logfile = open(settings.data_dir / LOG_NAME, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", *module_args],
            stdin=stdin,
            stdout=logfile,
            stderr=logfile,
            close_fds=True,
            start_new_session=True,
            env={**os.environ, GUARD: "1"},
            cwd=settings.data_dir,
        )
    finally:
        logfile.close()


def start_catch_up(settings: Settings) -> int:
    """Start `python -m indexer --quiet`, detached from Claude Code; returns its pid."""
    child = _detached(settings, ["indexer", "--quiet"], subprocess.DEVNULL)
    log.info("SessionStart: catch-up reindex started (pid %d, session %d)", child.pid, os.getsid(child.pid))
    return child.pid


def _transcripts_of(settings: Settings, event: dict[str, Any]) -> list[str] | None:
    """The session's transcript and its subagents' files, if the path lies in the projects dir."""
    raw = event.get("transcript_path")
    if not isinstance(raw, str) or not raw:
        log.warning("Stop: no transcript_path in the hook input")
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_relative_to(settings.projects_dir.resolve()):
        log.warning("Stop: %s is outside %s; not indexed", path, settings.projects_dir)
        return None
    subagents = path.with_suffix("") / "subagents"
    return [str(path)] + sorted(str(p) for p in subagents.glob("agent-*.jsonl"))


def index_session(settings: Settings, event: dict[str, Any]) -> None:
    """Index the new lines of the session the Stop event names."""
    import anyio

    from indexer.models import ReindexOptions
    from indexer.service import SessionSearch

    paths = _transcripts_of(settings, event)
    if not paths:
        return

    async def run() -> None:
        async with SessionSearch(settings) as index:
            report = await index.reindex(ReindexOptions(paths=paths))
            log.info("Stop: %d files, %d chunks added", report.files_indexed, report.chunks_added)

    anyio.run(run)


def recall_switch(settings: Settings) -> str | None:
    """The setting that turned recall on, for hooks.log; None when it is off."""
    if os.environ.get(PLUGIN_RECALL_OPTION, "").lower() in ("1", "true", "yes", "on"):
        return f"the plugin's recall option ({PLUGIN_RECALL_OPTION})"
    return "SESSION_SEARCH_RECALL or the config file" if settings.recall else None


def recall_on(settings: Settings) -> bool:
    return recall_switch(settings) is not None


def process_age_s() -> float:
    """Seconds since this process started, as the kernel counts them (Linux); 0 where it does not say.

    Recall's deadline counts from here, so the interpreter's start and the imports before
    run_hook (slow on a loaded machine) are inside the 1.5 s, not on top of it.
    """
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_s = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in ticks since boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started_s)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def start_searcher(settings: Settings) -> int:
    """Start the shared searcher unless one runs, detached like the catch-up reindex; returns the starter's pid.

    The starter (`python -m indexer.searcher_client`) takes the servers' start lock, so a
    server or another hook arriving meanwhile waits for this searcher instead of starting a
    second; it exits once the searcher listens. Its settings go in on a pipe it closes. The
    searcher stays RECALL_SEARCHER_IDLE_S after its last caller, not the servers' minute:
    the hook connects once a prompt, and prompts come minutes apart.
    """
    from indexer.searcher_client import settings_json

    child = _detached(settings, ["indexer.searcher_client"], subprocess.PIPE)
    assert child.stdin is not None
    idle_s = max(settings.searcher_idle_s, RECALL_SEARCHER_IDLE_S)
    child.stdin.write(settings_json(settings.model_copy(update={"searcher_idle_s": idle_s})).encode())
    child.stdin.close()
    return child.pid


async def _search_in_searcher(settings: Settings, request: SearchRequest) -> SearchResponse | None:
    """The shared searcher's answer; None when it dropped the call.

    When no searcher runs, one is started detached and waited for: the hook's deadline (in
    the caller) ends the wait, and the searcher stays for the next prompts. Nothing here
    imports chromadb: the searcher holds the index.
    """
    import anyio

    from indexer.models import SearchResponse
    from indexer.searcher_client import SearcherGone, SearcherNotRunning, SearcherPaths, ask_running

    paths = SearcherPaths.of(settings)
    started = False
    while True:
        try:
            return await ask_running(paths, "search", request, SearchResponse)
        except SearcherNotRunning:
            if not started:
                started = True
                pid = start_searcher(settings)
                log.info("UserPromptSubmit: no shared searcher was running; starting one (starter pid %d)", pid)
            await anyio.sleep(SEARCHER_POLL_S)
        except SearcherGone as exc:  # it died or left mid-call: the next prompt (or server) starts another
            log.info("UserPromptSubmit: no recall: the shared searcher dropped the call (%s)", exc)
            return None


async def _search_in_process(settings: Settings, request: SearchRequest) -> SearchResponse:
    from indexer.service import SessionSearch

    async with SessionSearch(settings) as index:
        return await index.search(request)


def recall_context(settings: Settings, event: dict[str, Any], deadline: float) -> str | None:
    """Past exchanges like the prompt, as the additionalContext block; None for none.

    The search runs in the shared searcher when it is on (the default) and no reranker is
    set; else in this process (chromadb's import alone is most of the time). Either way in a
    daemon thread: at `deadline` (time.monotonic) the hook leaves with nothing quoted,
    whatever Ollama or Chroma are doing.
    """
    from indexer.recall import recall_request

    prompt = event.get("prompt")
    request = recall_request(prompt) if isinstance(prompt, str) else None
    if request is None:
        return None
    # A reranker's scores would replace the cosine the threshold is set on (and cost time): recall
    # searches without one, which the shared searcher of servers with a reranker cannot do.
    shared = settings.shared_searcher and settings.rerank_url is None
    found: list[str | None] = []

    def work() -> None:
        try:
            import anyio

            from indexer.recall import context, relevant

            async def search() -> None:
                if shared:
                    response = await _search_in_searcher(settings, request)
                    if response is None:
                        return
                else:
                    response = await _search_in_process(settings.model_copy(update={"rerank_url": None}), request)
                hits = relevant(
                    response.results,
                    str(event.get("session_id") or ""),
                    settings.recall_min_similarity,
                    settings.recall_min_margin,
                )
                found.append(context(hits))
                best = response.results[0].score if response.results else 0
                log.info("UserPromptSubmit: %d past exchanges quoted (best similarity %.3f)", len(hits), best)

            anyio.run(search)
        except SessionSearchError as exc:
            log.info("UserPromptSubmit: nothing recalled: %s", exc)
        except Exception:
            log.exception("UserPromptSubmit: recall failed")

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        log.info("UserPromptSubmit: no recall, the search passed its deadline (%.2f s after the hook started)", process_age_s())
        logging.shutdown()
        # Leave now: letting the interpreter finalize under a thread still inside Chroma's
        # native code crashed it (SIGSEGV) in the bench; exit 0 prints nothing, as meant.
        os._exit(0)
    return found[0] if found else None


def _print_context(block: str) -> None:
    answer = {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": block}}
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run_hook(event_name: str, stdin: Any = sys.stdin) -> int:
    """Entry point of `session-search hook EVENT`. Always 0; failures go to hooks.log."""
    if os.environ.get(GUARD):
        return 0
    try:
        settings = load_settings()
    except SessionSearchError:
        return 0  # no data dir to log to; `session-search info` shows the setting error
    if event_name == "UserPromptSubmit" and not recall_on(settings):
        return 0  # off (the default): at once, nothing read, nothing printed
    deadline = time.monotonic() + settings.recall_deadline_s - process_age_s()
    _log_to_file(settings.data_dir)
    event = _read_event(stdin)
    try:
        if event_name == "SessionStart":
            start_catch_up(settings)
            if recall_on(settings) and settings.shared_searcher:  # so the first prompt finds the index loaded
                log.info("SessionStart: recall is on; shared searcher starter pid %d", start_searcher(settings))
        elif event_name == "Stop":
            index_session(settings, event)
        elif event_name == "UserPromptSubmit":
            log.info("UserPromptSubmit: recall is on (%s)", recall_switch(settings))
            if block := recall_context(settings, event, deadline):
                _print_context(block)
        else:
            log.warning("unknown hook event %r; nothing done", event_name)
    except IndexBusy as exc:
        log.info("%s: %s", event_name, exc)
    except SessionSearchError as exc:
        log.warning("%s: %s", event_name, exc)
    except Exception:  # a hook must never show Claude a traceback or a failure
        log.exception("%s failed", event_name)
    return 0
