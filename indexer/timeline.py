"""list_sessions: a timeline of indexed sessions, from the ledger alone (no Ollama, no Chroma)."""

from __future__ import annotations

from datetime import UTC, datetime

from indexer.agents import AGENTS
from indexer.chunk import count_tokens
from indexer.ledger import Ledger
from indexer.ledger_docs import session_filter
from indexer.models import ListSessionsRequest, ListSessionsResponse, SessionSummary

FIRST_PROMPT_CHARS = 160


def _iso(epoch: object) -> str | None:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z") if isinstance(epoch, int) else None


def _snippet(text: str) -> str:
    prompt = text.removeprefix("User: ").split("\n\nAssistant: ", 1)[0]
    line = " ".join(prompt.split())
    return line if len(line) <= FIRST_PROMPT_CHARS else line[: FIRST_PROMPT_CHARS - 1] + "…"


def list_sessions(ledger: Ledger, collection: str, request: ListSessionsRequest, budget_tokens: int) -> ListSessionsResponse:
    """A page of sessions, latest activity first, cut to the token budget (at least one)."""
    rows = ledger.sessions(collection, session_filter(request), request.agent, request.limit + 1, request.offset)
    page = rows[: request.limit]
    titles = ledger.titles(str(r[0]) for r in page)
    sessions: list[SessionSummary] = []
    used = 0
    for session_id, agent, project, branch, first, last, exchanges, subagents in page:
        summary = SessionSummary(
            session_id=str(session_id),
            agent=str(agent),
            project=str(project or ""),
            git_branch=str(branch or ""),
            title=titles.get(str(session_id)),
            started=_iso(first),
            ended=_iso(last),
            exchanges=int(exchanges or 0),
            first_prompt=_snippet(ledger.first_prompt(collection, str(session_id))),
            subagents=int(subagents or 0),
            resume_command=AGENTS[str(agent)].resume_command(str(session_id))
            if agent in AGENTS
            else f"claude --resume {session_id}",
        )
        used += count_tokens(summary.model_dump_json())
        if sessions and used > budget_tokens:
            break
        sessions.append(summary)
    more = len(sessions) < len(page) or len(rows) > request.limit
    note = None if sessions else "No indexed session matches these filters."
    if len(sessions) < len(page):
        note = (
            f"Only {len(sessions)} sessions fit the size budget; ask again with offset={request.offset + len(sessions)} for more."
        )
    return ListSessionsResponse(sessions=sessions, next_offset=request.offset + len(sessions) if more else None, note=note)
