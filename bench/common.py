"""Shared helpers for the benchmarks; the product never imports them. `from common import X` keeps
working for every bench script; the code lives in one module per concern:

- `base`: the repository and tests/ on sys.path, the fixtures, the installed command, the default
  model and chunker, `log` (progress to stderr).
- `report`: `machine_header()` (cores, CPU, Python, Chroma), `table`, `median`, `p95`, `du`, `mb`.
- `environment`: the product's settings and environment for a run (`env_for`, `settings_for`, `child_env`).
- `fast_standin`: `FastStandIn` / `standin_process()`, the test suite's Ollama stand-in
  (tests/support/ollama_standin.py, a real HTTP server) with cheap vectors: random unit vectors from
  numpy, sent with orjson. The stock stand-in hashes every word in pure Python and encodes with
  `json`, about 120 ms of CPU per 32 x 2,560 batch, which on 2 cores would be charged to the
  product. `delay_s` still models the model's time per request. `python bench/fast_standin.py
  --delay 0.02` (or `python bench/common.py standin --delay 0.02`) runs one in its own process,
  as Ollama is, and prints its URL.
- `homes`: `build_home()`, the real transcripts copied to a target size under new uuids, so that
  every copy gives new chunk ids (ids come from message uuids; a plain copy would be de-duplicated),
  and the chunks and embed batches a fresh index makes of them.
- `synthetic`: `build_synthetic_index()`, a served collection of N synthetic chunks, written with
  the product's own VectorCollection.upsert and Ledger.record (vectors, documents, metadata and the
  keyword index), without parsing or embedding over HTTP. Texts are lines of the real chunks
  recombined; vectors are exactly the stand-in's `embed_text` of each text (computed per line).
- `timing`: `search_without_embedding()`, a SessionSearch whose query embedder returns precomputed
  vectors, so a timed search is everything the server does except asking Ollama; `StageTimer`.
- `mcp_pipe`: `McpPipe`, raw JSON-RPC lines over a child's stdin/stdout.
"""

from __future__ import annotations

import sys

from base import BIN, FIXTURE_HOME, FIXTURES, MODEL, NATIVE_DIMS, PROTOCOL, ROOT, SESSION_SEARCH, SPEC, log
from environment import child_env, env_for, settings_for
from fast_standin import FastStandIn, covered, overlap, serve_standin, standin_intervals, standin_process, union
from homes import build_home, embed_batches, file_chunks, jsonl_bytes, product_cleaner, unique_ids
from mcp_pipe import McpPipe
from report import cpu_model, du, machine_header, mb, median, p95, table
from synthetic import (
    CACHE_VERSION,
    END,
    PREFIX_WORDS,
    PROJECT_SHARE,
    SINCE_DAYS,
    SPAN_DAYS,
    TARGET_PROJECT,
    Corpus,
    LineVectors,
    SyntheticIndex,
    build_synthetic_index,
    default_cache,
    joined_queries_from,
    queries_from,
    synthetic_index,
)
from timing import PrecomputedEmbedder, StageTimer, search_without_embedding

__all__ = [
    "BIN",
    "build_home",
    "build_synthetic_index",
    "CACHE_VERSION",
    "child_env",
    "Corpus",
    "covered",
    "cpu_model",
    "default_cache",
    "du",
    "embed_batches",
    "END",
    "env_for",
    "FastStandIn",
    "file_chunks",
    "FIXTURE_HOME",
    "FIXTURES",
    "jsonl_bytes",
    "LineVectors",
    "log",
    "machine_header",
    "mb",
    "McpPipe",
    "median",
    "MODEL",
    "NATIVE_DIMS",
    "overlap",
    "p95",
    "PrecomputedEmbedder",
    "PREFIX_WORDS",
    "product_cleaner",
    "PROJECT_SHARE",
    "PROTOCOL",
    "joined_queries_from",
    "queries_from",
    "ROOT",
    "search_without_embedding",
    "serve_standin",
    "SESSION_SEARCH",
    "settings_for",
    "SINCE_DAYS",
    "SPAN_DAYS",
    "SPEC",
    "StageTimer",
    "standin_intervals",
    "standin_process",
    "synthetic_index",
    "SyntheticIndex",
    "table",
    "TARGET_PROJECT",
    "union",
    "unique_ids",
]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="bench helpers: `standin` runs the fast Ollama stand-in")
    parser.add_argument("command", choices=["standin"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per /api/embed request")
    args = parser.parse_args(argv)
    return serve_standin(args.delay)


if __name__ == "__main__":
    sys.exit(main())
