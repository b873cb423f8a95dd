"""Tests for the Ollama stand-in, driven through the real ``ollama`` client."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
from collections.abc import Iterator

import httpx
import ollama
import pytest
from support.ollama_standin import OllamaStandIn, cosine, embed_text

MODEL = "qwen3-embedding:4b"


@pytest.fixture(scope="module")
def server() -> Iterator[OllamaStandIn]:
    with OllamaStandIn() as standin:
        yield standin


@pytest.fixture()
def standin(server: OllamaStandIn) -> Iterator[OllamaStandIn]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture()
def client(standin: OllamaStandIn) -> ollama.Client:
    return ollama.Client(host=standin.url)


def _norm(vec: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vec))


def test_root_version_tags_ps(standin: OllamaStandIn, client: ollama.Client) -> None:
    assert httpx.get(standin.url).text == "Ollama is running"
    assert httpx.get(f"{standin.url}/api/version").json() == {"version": "0.12.0"}
    names = {m.model for m in client.list().models}
    assert {"qwen3-embedding:4b", "nomic-embed-text:latest"} <= names
    assert client.ps().models == []


def test_embed_lengths_and_unit_norm(client: ollama.Client, standin: OllamaStandIn) -> None:
    resp = client.embed(model=MODEL, input=["hello world", "another text"])
    assert [len(v) for v in resp.embeddings] == [2560, 2560]
    assert all(abs(_norm(list(v)) - 1.0) < 1e-9 for v in resp.embeddings)
    assert resp.prompt_eval_count == 4
    assert standin.embed_calls == 1
    assert standin.embedded_inputs == ["hello world", "another text"]
    small = client.embed(model="nomic-embed-text:latest", input="hi")
    assert len(small.embeddings[0]) == 768


def test_embed_is_deterministic_and_matches_helper(client: ollama.Client) -> None:
    first = client.embed(model=MODEL, input="Stable output").embeddings[0]
    second = client.embed(model=MODEL, input="stable OUTPUT").embeddings[0]
    assert list(first) == list(second) == pytest.approx(embed_text("stable output", 2560))


def test_dimensions_truncates_and_renormalises(client: ollama.Client) -> None:
    vec = client.embed(model=MODEL, input="some text", dimensions=1024).embeddings[0]
    assert len(vec) == 1024
    assert abs(_norm(list(vec)) - 1.0) < 1e-9
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model=MODEL, input="x", dimensions=4096)
    assert err.value.status_code == 400


def test_empty_input_gives_no_embeddings(client: ollama.Client) -> None:
    assert client.embed(model=MODEL, input=[]).embeddings == []
    assert client.embed(model=MODEL).embeddings == []


def test_similar_texts_score_higher(client: ollama.Client) -> None:
    texts = [
        "configure the ollama embedding server on port 11434",
        "the ollama embedding server listens on a port",
        "bake sourdough bread with rye flour overnight",
    ]
    a, b, c = (list(v) for v in client.embed(model=MODEL, input=texts).embeddings)
    assert cosine(a, b) > cosine(a, c) + 0.3


def test_unpulled_model_is_404(client: ollama.Client, standin: OllamaStandIn) -> None:
    standin.pulled.discard(MODEL)
    for call in (lambda: client.embed(model=MODEL, input="x"), lambda: client.show(MODEL)):
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert err.value.status_code == 404
        assert "try pulling it first" in err.value.error
    assert MODEL not in {m.model for m in client.list().models}


def test_nan_marker_fails_whole_request(client: ollama.Client, standin: OllamaStandIn) -> None:
    standin.nan_marker = "POISON"
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model=MODEL, input=["fine", "has POISON in it"])
    assert err.value.status_code == 400
    assert "NaN" in err.value.error
    assert len(client.embed(model=MODEL, input=["fine"]).embeddings) == 1


def test_fail_next_then_success(client: ollama.Client, standin: OllamaStandIn) -> None:
    standin.fail_next = 1
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model=MODEL, input="x")
    assert err.value.status_code == 500
    assert "llama runner" in err.value.error
    assert len(client.embed(model=MODEL, input="x").embeddings) == 1
    assert standin.embed_calls == 2 and standin.fail_next == 0


def test_wrong_dims(client: ollama.Client, standin: OllamaStandIn) -> None:
    standin.wrong_dims = 7
    assert len(client.embed(model=MODEL, input="x").embeddings[0]) == 7


def test_down_refuses_then_up_restores(client: ollama.Client, standin: OllamaStandIn) -> None:
    port = standin.port
    for _ in range(2):
        standin.down()
        with pytest.raises(ConnectionError):
            client.embed(model=MODEL, input="x")
        standin.up()
        assert standin.port == port
        assert len(client.embed(model=MODEL, input="x").embeddings) == 1


def test_connections_are_kept_alive_like_ollamas(standin: OllamaStandIn) -> None:
    """Go's server keeps connections open; a body the stand-in never reads must not spill into the next request."""
    conn = http.client.HTTPConnection(standin.host, standin.port, timeout=5)
    conn.request("POST", "/api/embeddings", body=json.dumps({"model": MODEL, "prompt": "x" * 5000}))
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    assert first.status == 404 and not first.will_close
    conn.request("POST", "/api/embed", body=json.dumps({"model": MODEL, "input": "y"}))
    second = conn.getresponse()
    assert second.status == 200 and len(json.loads(second.read())["embeddings"]) == 1
    assert conn.sock is sock
    conn.close()


def test_show_reports_embedding_length(client: ollama.Client) -> None:
    info = client.show(MODEL)
    assert info.modelinfo["qwen3.embedding_length"] == 2560
    assert info.modelinfo["general.architecture"] == "qwen3"
    assert info.capabilities == ["embedding"]
    bert = client.show("nomic-embed-text")
    assert bert.modelinfo["bert.embedding_length"] == 768
    assert bert.modelinfo["bert.context_length"] == 2048


def test_legacy_and_bad_requests(standin: OllamaStandIn) -> None:
    legacy = httpx.post(f"{standin.url}/api/embeddings", json={"model": MODEL, "prompt": "x"})
    assert legacy.status_code == 404
    assert httpx.get(f"{standin.url}/api/nope").status_code == 404
    bad = httpx.post(f"{standin.url}/api/embed", content=b"{nope")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("invalid character")


def test_delay_times_out(standin: OllamaStandIn) -> None:
    standin.delay_s = 1.0
    slow = ollama.Client(host=standin.url, timeout=0.2)
    with pytest.raises(httpx.TimeoutException):
        slow.embed(model=MODEL, input="x")


def test_async_client(standin: OllamaStandIn) -> None:
    async def run() -> tuple[int, int]:
        client = ollama.AsyncClient(host=standin.url)
        results = await asyncio.gather(*(client.embed(model="all-minilm", input=f"text {i}") for i in range(8)))
        info = await client.show("all-minilm:latest")
        return len(results), info.modelinfo["bert.embedding_length"]

    assert asyncio.run(run()) == (8, 384)
    assert standin.embed_calls == 8


def test_async_client_down_and_timeout(standin: OllamaStandIn) -> None:
    async def refused() -> None:
        await ollama.AsyncClient(host=standin.url).embed(model=MODEL, input="x")

    async def slow() -> None:
        await ollama.AsyncClient(host=standin.url, timeout=0.2).embed(model=MODEL, input="x")

    standin.down()
    with pytest.raises(ConnectionError):
        asyncio.run(refused())
    standin.up()
    standin.delay_s = 1.0
    with pytest.raises(httpx.TimeoutException):
        asyncio.run(slow())
