"""What every benchmark module shares: the repository and tests/ on sys.path, the fixtures, the
installed command, the default model and chunker, and `log`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from indexer.chunk import ChunkerSpec  # noqa: E402

FIXTURE_HOME = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")).resolve()
FIXTURES = FIXTURE_HOME / "projects"
BIN = Path(sys.executable).parent
SESSION_SEARCH = BIN / "session-search"
SPEC = ChunkerSpec("exchange", 400, 64, 1500)  # the default settings' chunker
MODEL = "qwen3-embedding:4b"
NATIVE_DIMS = 2560
PROTOCOL = "2025-06-18"


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
