"""Plain-text renderings of the public results, shared by the CLI and the MCP tools."""

from __future__ import annotations

import textwrap

from indexer.models import ListSessionsResponse, ModelInfo, ReindexReport, SearchHit, SearchResponse, SessionPage


def _title(title: str | None) -> str:
    return f' "{title}"' if title else ""


def _hit(rank: int, hit: SearchHit) -> str:
    branch = f" ({hit.git_branch})" if hit.git_branch else ""
    agent = f" [subagent {hit.agent_id}]" if hit.agent_id else ""
    return (
        f"{rank}. score {hit.score:.3f} ({hit.match}) | {hit.timestamp[:16].replace('T', ' ')} | {hit.project or '?'}{branch}{agent}\n"
        f"   {hit.agent} session {hit.session_id}{_title(hit.title)} ({hit.resume_command}) | {hit.source_path}:{hit.line_start}-{hit.line_end}\n"
        + textwrap.indent(hit.snippet, "   | ")
    )


def render_search(response: SearchResponse) -> str:
    head = f"{len(response.results)} results for {response.query!r} ({response.mode}; {response.total_chunks} chunks indexed)"
    if response.next_offset is not None:
        head += f"; more with offset={response.next_offset}"
    parts = [head] + ([response.note] if response.note else [])
    parts += [_hit(rank, hit) for rank, hit in enumerate(response.results, start=1)]
    return "\n\n".join(parts)


def render_report(report: ReindexReport) -> str:
    if report.dry_run:
        return (
            f"Dry run: {report.files_indexed} of {report.files_scanned} files would be indexed, "
            f"{report.chunks_added} chunks, about {report.estimated_tokens} tokens to embed."
        )
    lines = [
        f"{report.files_indexed} of {report.files_scanned} files indexed: {report.chunks_added} chunks added, "
        f"{report.chunks_removed} removed, {report.chunks_skipped} skipped, {report.malformed_lines} malformed lines, "
        f"in {report.seconds:.1f} s."
    ]
    said: list[tuple[object, str]] = [  # (whether it happened, what to say)
        (report.first_index, "The first index of this data dir is built and now served."),
        (report.migrated and not report.first_index, "A new index was built beside the old one and is now served."),
        (report.files_pruned, f"{report.files_pruned} deleted transcripts were pruned from the index."),
        (
            report.files_gone,
            f"{report.files_gone} indexed transcripts no longer exist (Claude Code deletes old sessions); their chunks stay "
            "searchable. `session-search reindex --prune` drops them.",
        ),
        (report.skipped, "The model returned NaN for these chunks, left out: " + ", ".join(report.skipped)),
    ]
    lines += [text for happened, text in said if happened]
    return "\n".join(lines)


def render_info(info: ModelInfo) -> str:
    return "\n".join(f"{key:>18}: {value}" for key, value in info.model_dump().items() if value is not None)


def render_session(page: SessionPage) -> str:
    last = page.messages[-1].index if page.messages else 0
    head = f"{page.agent} session {page.session_id}{_title(page.title)} | {page.project} ({page.git_branch}) | messages {page.messages[0].index if page.messages else 0}-{last} of {page.total_messages}"
    parts = [head] + ([page.note] if page.note else [])
    parts += [f"[{m.index}] {m.role} {m.timestamp[:16].replace('T', ' ')}\n{m.text}" for m in page.messages]
    if page.next_offset is not None:
        parts.append(f"More: offset={page.next_offset}.")
    return "\n\n".join(parts)


def render_sessions(response: ListSessionsResponse) -> str:
    head = f"{len(response.sessions)} sessions, latest first"
    if response.next_offset is not None:
        head += f"; more with offset={response.next_offset}"
    parts = [head] + ([response.note] if response.note else [])
    for s in response.sessions:
        when = f"{(s.started or '?')[:16].replace('T', ' ')} - {(s.ended or '?')[:16].replace('T', ' ')}"
        branch = f" ({s.git_branch})" if s.git_branch else ""
        subagents = f", {s.subagents} subagents" if s.subagents else ""
        parts.append(
            f"{when} | {s.project or '?'}{branch} | {s.agent}, {s.exchanges} exchanges{subagents}\n"
            f"   {s.title or s.first_prompt or '(no prompt)'}\n   session {s.session_id} ({s.resume_command})"
        )
    return "\n\n".join(parts)
