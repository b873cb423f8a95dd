"""A whole reindex in a child process: the background refresh of a server whose reads go to the
shared searcher.

Such a server never loads Chroma to search. Planning a reindex opens the store (chromadb's import
and client: about 128 MB), and a server's refresh finds changed files every few minutes when no
hook indexes them first, so every window would grow by that much. The child does the whole run,
writer lock and all, and exits; the server keeps only the report.

    python -m indexer.reindex_process   # settings as JSON on stdin; the report (or error) as JSON on stdout
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import anyio

from indexer.config import Settings
from indexer.errors import SessionSearchError, error_from, error_reply
from indexer.models import ReindexOptions, ReindexReport
from indexer.searcher_client import settings_from_json, settings_json


async def reindex_in_child(settings: Settings) -> ReindexReport:
    """The report of `reindex` run with these settings in a child process, or its error raised
    as the same exception class. Cancelling this kills the child; a reindex is safe to kill."""
    done = await anyio.run_process(
        [sys.executable, "-m", "indexer.reindex_process"],
        input=settings_json(settings).encode(),
        stdout=subprocess.PIPE,
        stderr=None,  # the child's log lines go where this process's go
        check=False,
    )
    try:
        reply = json.loads(done.stdout)
    except ValueError:  # it crashed: its traceback went to this process's stderr
        raise SessionSearchError(f"The reindex process exited with {done.returncode} and no report; see the log above.") from None
    if "error" in reply:
        raise error_from(reply["error"], "the reindex process")
    return ReindexReport.model_validate(reply["ok"])


async def _reindex(settings: Settings) -> ReindexReport:
    from indexer.service import SessionSearch

    async with SessionSearch(settings) as index:
        return await index.reindex(ReindexOptions())


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s reindex %(name)s: %(message)s")
    settings = settings_from_json(sys.stdin.read())
    try:
        reply: dict[str, object] = {"ok": anyio.run(_reindex, settings).model_dump(mode="json")}
    except SessionSearchError as exc:
        reply = {"error": error_reply(exc)}
    sys.stdout.write(json.dumps(reply) + "\n")
    return 0 if "ok" in reply else 1


if __name__ == "__main__":
    sys.exit(main())
