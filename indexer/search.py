"""Turn a search request into a Chroma query, and its answer into results."""

from __future__ import annotations

from typing import Any

from indexer.errors import InvalidArgument
from indexer.models import SearchHit, SearchRequest
from indexer.store import StoredHit

SHOWN_PROJECTS = 8


def matching_projects(fragment: str, known: list[str]) -> list[str]:
    """Indexed projects whose path contains fragment (case-insensitive)."""
    wanted = fragment.strip().rstrip("/").lower()
    found = sorted(p for p in known if wanted in p.lower())
    if not found:
        listing = ", ".join(sorted(known)[:SHOWN_PROJECTS]) or "none yet"
        raise InvalidArgument(f"No indexed project matches {fragment!r}. Indexed projects include: {listing}.")
    return found


def where_clause(request: SearchRequest, projects: list[str] | None) -> dict[str, Any] | None:
    """Chroma `where` for the request's filters; None when there are none."""
    conditions: list[dict[str, Any]] = []
    if projects:
        conditions.append({"project": {"$in": projects}})
    if request.session_id:
        conditions.append({"session_id": {"$eq": request.session_id}})
    if (since := request.since_epoch()) is not None:
        conditions.append({"ts_epoch": {"$gte": since}})
    if (until := request.until_epoch()) is not None:
        conditions.append({"ts_epoch": {"$lte": until}})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _str(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def _int(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) else 0


def to_hit(stored: StoredHit) -> SearchHit:
    meta = stored.metadata
    tools = meta.get("tools")
    session_id = _str(meta, "session_id")
    return SearchHit(
        score=round(1.0 - stored.distance, 4),
        session_id=session_id,
        project=_str(meta, "project"),
        git_branch=_str(meta, "git_branch"),
        timestamp=_str(meta, "timestamp"),
        kind=_str(meta, "kind"),
        agent_id=_str(meta, "agent_id"),
        text=stored.text,
        source_path=_str(meta, "source_path"),
        line_start=_int(meta, "line_start"),
        line_end=_int(meta, "line_end"),
        tools=[t for t in tools if isinstance(t, str)] if isinstance(tools, list) else [],
        chunk_id=stored.id,
        resume_command=f"claude --resume {session_id}",
    )
