"""What every report prints: the machine header, tables, medians and sizes."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

# -- the report ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_header(title: str, argv: Sequence[str]) -> str:
    import chromadb

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join(
        [
            f"# {title}",
            "",
            f"- command: `{' '.join(['python', *argv])}`",
            (
                f"- machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
                f"Python {platform.python_version()}, chromadb {chromadb.__version__}, load average {load} at start"
            ),
            f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
            "",
        ]
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""

    def cell(value: object) -> str:
        return (
            f"{value:.3g}"
            if isinstance(value, float) and abs(value) < 1
            else (f"{value:,.1f}" if isinstance(value, float) else str(value))
        )

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def du(path: Path) -> int:
    """Bytes on disk under path (allocated blocks, as du counts them)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6
