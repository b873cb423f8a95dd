"""The test suite's Ollama stand-in with cheap vectors, in-process or in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import base  # noqa: F401 - puts the repository and tests/ on sys.path first
import numpy as np
import orjson
from support.ollama_standin import OllamaStandIn

# -- the Ollama stand-in with cheap vectors ---------------------------------------------------


class FastStandIn(OllamaStandIn):
    """The stand-in with random unit vectors and orjson encoding (see the module docstring).

    Vectors are fresh random draws per request, so a replicated corpus still gives distinct
    vectors (HNSW handles exact duplicates unusually). prompt_eval_count is len/4, which keeps
    the product's truncation check quiet, as a real model would.
    """

    def _vectors(self, key: str, texts: list[str], dims: int, truncate: Any) -> tuple[Any, int]:
        vectors = np.random.default_rng().standard_normal((len(texts), dims), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors, sum(len(t) for t in texts) // 4

    def handle(self, method: str, path: str, read_body: Any) -> tuple[int, dict[str, Any] | str]:
        if path == "/bench/intervals":  # (start, end) of every /api/embed since the last call, on CLOCK_MONOTONIC
            with self.lock:
                spans, self._spans = list(getattr(self, "_spans", [])), []
            return 200, {"intervals": spans}
        started = time.monotonic()
        status, body = super().handle(method, path, read_body)
        if isinstance(body, dict) and "embeddings" in body:
            # A str body goes out as-is; the ollama client parses it as JSON whatever its type.
            text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            with self.lock:
                self._spans = [*getattr(self, "_spans", []), (started, time.monotonic())]
            return status, text
        return status, body


@contextmanager
def standin_process(delay_s: float = 0.0) -> Iterator[str]:
    """A FastStandIn in its own process, as Ollama is; yields its URL."""
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--delay", str(delay_s)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        url = (child.stdout.readline() if child.stdout else "").strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the stand-in did not start (got {url!r})")
        yield url
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def standin_intervals(url: str) -> list[tuple[float, float]]:
    """The (start, end) of each /api/embed a standin_process served since the last call (time.monotonic)."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/bench/intervals", timeout=10) as answer:
        return [tuple(span) for span in json.loads(answer.read())["intervals"]]


def union(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping intervals merged."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def covered(spans: Sequence[tuple[float, float]]) -> float:
    return sum(end - start for start, end in union(spans))


def overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Seconds during which both some interval of a and some interval of b were running."""
    total, ua, ub, i, j = 0.0, union(a), union(b), 0, 0
    while i < len(ua) and j < len(ub):
        total += max(0.0, min(ua[i][1], ub[j][1]) - max(ua[i][0], ub[j][0]))
        if ua[i][1] < ub[j][1]:
            i += 1
        else:
            j += 1
    return total


def serve_standin(delay_s: float) -> int:
    """Serve a FastStandIn: print its URL, then serve until stdin closes."""
    standin = FastStandIn()
    standin.delay_s = delay_s
    standin.start()
    print(standin.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    standin.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="The fast Ollama stand-in in its own process: prints its URL, serves until stdin closes."
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per /api/embed request")
    return serve_standin(parser.parse_args(argv).delay)


if __name__ == "__main__":
    sys.exit(main())
