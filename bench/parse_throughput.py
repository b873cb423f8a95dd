"""Parse and chunk throughput over the real transcripts, replicated to >= 100 MB.

    .venv/bin/python bench/parse_throughput.py                       # MB/s (median of 3) and peak RSS
    .venv/bin/python bench/parse_throughput.py --save /tmp/parse_baseline.jsonl
    .venv/bin/python bench/parse_throughput.py --check /tmp/parse_baseline.jsonl
    .venv/bin/python bench/parse_throughput.py --profile             # cProfile of one parse+chunk pass
    .venv/bin/python bench/parse_throughput.py --agent codex          # Codex (or gemini-cli) fixtures, read over and over

--save/--check dump, for every fixture file, its ParseStats, title and the (id, content_hash,
metadata) of every chunk, so an optimisation can be shown to change no output byte.
MB is 10**6 bytes of JSONL that discover() yields (compaction runs are not read).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from indexer.agents import discover_sources
from indexer.chunk import ChunkerSpec, chunk_transcript, encoding
from indexer.parse import parse_file
from indexer.sources import discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("SESSION_SEARCH_FIXTURES", ROOT.parent / "shared" / "fixtures" / "claude-home")) / "projects"
SPEC = ChunkerSpec("exchange", 400, 64, 1500)
TARGET_BYTES = 100 * 10**6
RUNS = 3


def snapshot_lines(projects: Path) -> Iterator[str]:
    """One JSON line per file: what the parser and chunker produce, in a stable form."""
    for source in discover(projects):
        transcript = parse_file(source, SPEC.tool_output_chars)
        # Zero counters are left out, so a new ParseStats field that stays zero changes nothing.
        stats = {name: value for name, value in asdict(transcript.stats).items() if value}
        chunks = [(c.id, c.content_hash, c.metadata) for c in chunk_transcript(transcript, SPEC)]
        record = {"file": source.rel_path, "stats": stats, "title": transcript.title, "chunks": chunks}
        yield json.dumps(record, sort_keys=True, ensure_ascii=False)


def check(projects: Path, baseline: Path) -> int:
    """0 when the output matches the saved baseline byte for byte; else print the first difference."""
    expected = baseline.read_text(encoding="utf-8").splitlines()
    actual = list(snapshot_lines(projects))
    if actual == expected:
        print(f"identical: {len(actual)} files, {sum(len(line) for line in actual)} bytes of snapshot")
        return 0
    for index, (old, new) in enumerate(zip(expected, actual, strict=False)):
        if old != new:
            print(f"file {index} differs:\n  baseline {old[:400]}\n  now      {new[:400]}")
            break
    print(f"DIFFERENT (baseline {len(expected)} files, now {len(actual)})")
    return 1


def _jsonl_bytes(projects: Path) -> int:
    return sum(source.size for source in discover(projects))


def _copy_renamed(src: Path, dst: Path, suffix: str) -> None:
    """Copy one project folder, giving every session (and its subagent folder) a new name."""
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        top, *rest = path.relative_to(src).parts
        if top.endswith(".jsonl"):
            top = top.removesuffix(".jsonl") + suffix + ".jsonl"
        elif rest:  # <session>/subagents/...: follows its session's new name
            top += suffix
        target = dst.joinpath(top, *rest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def build_home(projects: Path, into: Path, target: int = TARGET_BYTES) -> Path:
    """A claude home whose projects hold the fixtures copied under new session names, >= target bytes."""
    out = into / "projects"
    copies = -(-target // _jsonl_bytes(projects))
    for n in range(copies):
        for folder in sorted(p for p in projects.iterdir() if p.is_dir()):
            _copy_renamed(folder, out / folder.name, f"-r{n:03d}")
    return out


def one_pass(projects: Path, chunk: bool) -> None:
    for source in discover(projects):
        transcript = parse_file(source, SPEC.tool_output_chars)
        if chunk:
            for _ in chunk_transcript(transcript, SPEC):
                pass


def timed(projects: Path, chunk: bool) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of RUNS passes."""
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        one_pass(projects, chunk)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def pin_one_core() -> int:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def throughput(projects: Path) -> None:
    core = pin_one_core()
    encoding()  # load the tiktoken table before timing: a one-off cost, not per MB
    with tempfile.TemporaryDirectory(prefix="parse-bench-") as tmp:
        home = build_home(projects, Path(tmp))
        size = _jsonl_bytes(home)
        files = sum(1 for _ in discover(home))
        print(f"{size / 1e6:.1f} MB in {files} files, core {core}, median of {RUNS}; RSS before {peak_rss_mb():.0f} MB")
        # CPU seconds are what one core spent: a fairer figure than wall time on a shared machine.
        print(f"{'stage':<22}{'wall s':>8}{'MB/s':>8}{'CPU s':>8}{'MB/CPU-s':>10}{'peak RSS MB':>13}")
        for label, chunk in (("discover+parse", False), ("discover+parse+chunk", True)):
            wall, cpu = timed(home, chunk)
            mb = size / 1e6
            print(f"{label:<22}{wall:>8.2f}{mb / wall:>8.1f}{cpu:>8.2f}{mb / cpu:>10.1f}{peak_rss_mb():>13.0f}")


AGENT_HOMES = {"codex": Path("codex-home"), "gemini-cli": Path("gemini-home") / "tmp"}


def agent_throughput(agent: str, fixtures: Path) -> None:
    """MB per CPU-second of another agent's parser and the chunker, its few fixture files parsed until 10 MB are read."""
    pin_one_core()
    encoding()
    sources = list(discover_sources({agent: fixtures.parent.parent / AGENT_HOMES[agent]}))
    size = sum(s.size for s in sources)
    rounds = -(-10 * 10**6 // size)
    cpus = []
    for _ in range(RUNS):
        cpu = time.process_time()
        for _ in range(rounds):
            for source in sources:
                for _ in chunk_transcript(parse_file(source, SPEC.tool_output_chars), SPEC):
                    pass
        cpus.append(time.process_time() - cpu)
    mb = size * rounds / 1e6
    print(f"{agent}: {len(sources)} files, {size / 1e3:.0f} kB read {rounds} times ({mb:.1f} MB), median of {RUNS}")
    print(f"discover+parse+chunk {mb / statistics.median(cpus):.1f} MB/CPU-s")


def profile(projects: Path, top: int = 25) -> None:
    encoding()
    profiler = cProfile.Profile()
    profiler.runcall(one_pass, projects, True)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="a projects dir (default: the shared fixtures)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", type=Path, metavar="PATH", help="write the output snapshot to PATH")
    group.add_argument("--check", type=Path, metavar="PATH", help="compare the output with the snapshot at PATH")
    group.add_argument("--profile", action="store_true", help="cProfile one parse+chunk pass over the fixtures")
    group.add_argument(
        "--agent", choices=sorted(AGENT_HOMES), help="measure this agent's parser on its fixtures beside the Claude home"
    )
    args = parser.parse_args(argv)
    if args.save:
        args.save.write_text("".join(line + "\n" for line in snapshot_lines(args.fixtures)), encoding="utf-8")
        print(f"saved {args.save}")
    elif args.check:
        return check(args.fixtures, args.check)
    elif args.profile:
        profile(args.fixtures)
    elif args.agent:
        agent_throughput(args.agent, args.fixtures)
    else:
        throughput(args.fixtures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
