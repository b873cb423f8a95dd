"""The repository root and the shared transcripts the tests read."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURE_HOME = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")).resolve()
FIXTURE_PROJECTS = FIXTURE_HOME / "projects"


def missing_transcripts() -> str | None:
    """Why the shared transcripts cannot be read, or None when they are there."""
    if FIXTURE_PROJECTS.is_dir():
        return None
    return f"The shared transcripts are missing: expected them in {FIXTURE_HOME} (set SESSION_SEARCH_FIXTURES)"
