"""Cold start of `session-search serve`: spawn to the `tools/list` answer, against a minimal MCP server.

    .venv/bin/python bench/cold_start.py            # 21 starts of each, alternating; 7 first searches
    .venv/bin/python bench/cold_start.py --quick    # 3 of each, 2 first searches

Both servers get the same client: raw JSON-RPC lines over pipes (initialize, then
notifications/initialized, then tools/list), timed from Popen to the tools/list answer. The
minimal server is an MCPServer with one tool, written to a temporary file and run by the same
Python. Starts alternate (serve, minimal, minimal, serve, ...) so that drift on a busy machine
hits both alike. Target: median(serve) / median(minimal) <= 1.2.

Also: the time to the first `search` answer after a start (handshake, then tools/call search)
against an index built beforehand from real transcripts, with the stand-in answering the query
embedding and SESSION_SEARCH_REFRESH_MINUTES=0; and which modules `python -X importtime` shows
loaded before the tools/list answer, and which only on the first search.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    FIXTURE_HOME,
    SESSION_SEARCH,
    McpPipe,
    build_home,
    child_env,
    env_for,
    log,
    machine_header,
    median,
    settings_for,
    standin_process,
    table,
)

from indexer.service import SessionSearch

MINIMAL = '''\
from mcp.server.mcpserver import MCPServer

server = MCPServer("minimal")


@server.tool()
def echo(text: str) -> str:
    """Return the text."""
    return text


server.run("stdio")
'''
RATIO_TARGET = 1.2
WATCHED = (
    "chromadb",
    "ollama",
    "httpx",
    "numpy",
    "tiktoken",
    "onnxruntime",
    "opentelemetry",
    "tqdm",
    "sqlite3",
    "pydantic",
    "mcp",
    "anyio",
    "starlette",
    "uvicorn",
    "tokenizers",
)
QUERIES = ("mix phx.server doesnt seem to start", "how did we fix the failing test", "git rebase conflict")


def time_handshake(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to the tools/list answer."""
    pipe = McpPipe(argv, env)
    try:
        answer = pipe.handshake()
        elapsed = time.perf_counter() - pipe.started
        if "result" not in answer or not answer["result"].get("tools"):
            raise RuntimeError(f"tools/list failed: {answer}")
        return elapsed
    finally:
        pipe.close()


def time_first_search(argv: list[str], env: dict[str, str], queries: tuple[str, ...]) -> tuple[float, float, float]:
    """(spawn to the first search answer, that call alone, a second search alone), in seconds."""
    pipe = McpPipe(argv, env)
    try:
        pipe.handshake()
        sent = time.perf_counter()
        first = pipe.request("tools/call", {"name": "search", "arguments": {"query": queries[0]}})
        done = time.perf_counter()
        if first.get("result", {}).get("isError") or "error" in first:
            raise RuntimeError(f"search failed: {str(first)[:300]}")
        again = time.perf_counter()
        pipe.request("tools/call", {"name": "search", "arguments": {"query": queries[1]}})
        return done - pipe.started, done - sent, time.perf_counter() - again
    finally:
        pipe.close()


def _parse_importtime(lines: list[str]) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, depth) of `-X importtime` lines."""
    found = []
    for line in lines:
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            head, cumulative, name = line.rstrip("\n").split("|")
            found.append((name.strip(), int(head.split(":", 1)[1]), int(cumulative), len(name) - len(name.lstrip(" "))))
        except ValueError:
            continue
    return found


def importtime(
    script: list[str], env: dict[str, str], search: bool
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, int, int, int]]]:
    """Imports of `python -X importtime SCRIPT...` before the tools/list answer, and (if search) those the first search added."""
    lines: list[str] = []
    lock = threading.Lock()
    pipe = McpPipe([sys.executable, "-X", "importtime", *script], env, stderr=-1)

    def read() -> None:
        assert pipe.proc.stderr is not None
        for raw in iter(pipe.proc.stderr.readline, b""):
            with lock:
                lines.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        pipe.handshake()
        time.sleep(0.5)  # let stderr catch up; nothing runs in the server meanwhile (refresh is off)
        with lock:
            before = list(lines)
        after: list[str] = []
        if search:
            pipe.request("tools/call", {"name": "search", "arguments": {"query": QUERIES[0]}})
            time.sleep(0.5)
            with lock:
                after = lines[len(before) :]
    finally:
        pipe.close()
        reader.join(timeout=5)
    return _parse_importtime(before), _parse_importtime(after)


def summarise(imports: list[tuple[str, int, int, int]]) -> tuple[int, float, list[tuple[str, float]]]:
    """(modules, total ms, heaviest top-level packages by cumulative ms)."""
    if not imports:
        return 0, 0.0, []
    top_depth = min(d for *_, d in imports)
    by_root: dict[str, float] = defaultdict(float)
    for name, _, cumulative, depth in imports:
        if depth == top_depth:
            by_root[name.split(".")[0]] += cumulative / 1e3
    heaviest = sorted(by_root.items(), key=lambda kv: -kv[1])[:10]
    return len(imports), sum(s for _, s, _, _ in imports) / 1e3, heaviest


def build_index(url: str, claude: Path, data: Path) -> int:
    async def run() -> int:
        async with SessionSearch(settings_for(url, claude, data)) as index:
            return (await index.reindex()).chunks_added

    return anyio.run(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 starts of each")
    parser.add_argument("--runs", type=int, help="starts of each server (default 21, quick 3)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 21)
    searches = 2 if args.quick else 7
    print(
        machine_header(
            "Cold start: `session-search serve` vs a minimal MCPServer", ["bench/cold_start.py", *(argv or sys.argv[1:])]
        )
    )
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp, standin_process(0.0) as url:
        root = Path(tmp)
        minimal = root / "minimal_server.py"
        minimal.write_text(MINIMAL)
        claude = build_home(3_000_000, root / "claude") if args.quick else FIXTURE_HOME
        log("building the small index")
        chunks = build_index(url, claude, root / "data")
        env = child_env(env_for(url, claude, root / "data"))
        serve_argv, minimal_argv = [str(SESSION_SEARCH), "serve"], [sys.executable, str(minimal)]
        time_handshake(serve_argv, env)  # the first start fills the OS file cache for both
        time_handshake(minimal_argv, env)
        serve_t: list[float] = []
        minimal_t: list[float] = []
        log(f"{runs} starts of each, alternating")
        for i in range(runs):
            order = [(serve_argv, serve_t), (minimal_argv, minimal_t)]
            for cmd, out in order if i % 2 == 0 else order[::-1]:
                out.append(time_handshake(cmd, env))
        log(f"{searches} first searches")
        first = [time_first_search(serve_argv, env, QUERIES[i % 2 :]) for i in range(searches)]
        log("import analysis")
        serve_before, serve_search = importtime(serve_argv, env, search=True)
        minimal_before, _ = importtime([str(minimal)], env, search=False)

    ratio = median(serve_t) / median(minimal_t)
    print(
        f"{runs} starts of each, alternating; the index holds {chunks} chunks of real transcripts; SESSION_SEARCH_REFRESH_MINUTES=0.\n"
    )
    print(
        table(
            ["server", "spawn -> tools/list median ms", "min ms", "max ms"],
            [
                [
                    "session-search serve",
                    f"{median(serve_t) * 1e3:.0f}",
                    f"{min(serve_t) * 1e3:.0f}",
                    f"{max(serve_t) * 1e3:.0f}",
                ],
                [
                    "minimal MCPServer (1 tool)",
                    f"{median(minimal_t) * 1e3:.0f}",
                    f"{min(minimal_t) * 1e3:.0f}",
                    f"{max(minimal_t) * 1e3:.0f}",
                ],
            ],
        )
    )
    print(
        f"\nRatio serve / minimal (medians): **{ratio:.2f}** (target <= {RATIO_TARGET}: {'met' if ratio <= RATIO_TARGET else 'NOT met'}).\n"
    )
    print(
        table(
            ["first search after a start", "median ms", "min ms", "max ms"],
            [
                [label, f"{median(v) * 1e3:.0f}", f"{min(v) * 1e3:.0f}", f"{max(v) * 1e3:.0f}"]
                for label, v in (
                    ("spawn -> first search answer (handshake included)", [f[0] for f in first]),
                    ("first tools/call search alone", [f[1] for f in first]),
                    ("second tools/call search alone", [f[2] for f in first]),
                )
            ],
        )
    )
    print(f"\n{searches} starts; the query embedding goes to the stand-in (delay 0) and is included.\n")
    n_before, ms_before, heavy_before = summarise(serve_before)
    n_search, ms_search, heavy_search = summarise(serve_search)
    n_min, ms_min, _ = summarise(minimal_before)
    names_before = {name.split(".")[0] for name, *_ in serve_before}
    names_search = {name.split(".")[0] for name, *_ in serve_search}
    print("Imports (`python -X importtime`; ms are importtime's own, inflated by it):\n")
    print(
        table(
            ["process, phase", "modules", "import ms (sum of self)"],
            [
                ["serve, before the tools/list answer", n_before, f"{ms_before:.0f}"],
                ["serve, added by the first search", n_search, f"{ms_search:.0f}"],
                ["minimal server, before the tools/list answer", n_min, f"{ms_min:.0f}"],
            ],
        )
    )
    print()
    print(
        table(
            ["package", "imported before tools/list", "(sub)modules imported by the first search"],
            [[name, "yes" if name in names_before else "no", "yes" if name in names_search else "no"] for name in WATCHED],
        )
    )
    print(
        "\nHeaviest top-level imports before tools/list (cumulative ms): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in heavy_before)
    )
    print(
        "\nHeaviest top-level imports on the first search (cumulative ms): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in heavy_search)
    )
    bad = [name for name in ("chromadb", "ollama") if name in names_before]
    print(f"\nchromadb or ollama before tools/list: {'NO (good)' if not bad else 'YES: ' + ', '.join(bad)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
