"""One definition per tool: the request models make the MCP tools' arguments and the CLI's options.

Also the CLI commands that come from it (`search`'s filters, `read`), the one-line refusal of a bad
argument on both surfaces, and the errors' facts (host, model, status) that `info` decides from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import pytest
from mcp import Client
from support.env import env_for, settings_for
from support.ollama_standin import OllamaStandIn
from support.processes import COMMAND

from indexer.cli import _parser, _request
from indexer.config import Settings
from indexer.embed import Embedder, OllamaEmbedder
from indexer.embed_openai import OpenAIEmbedder
from indexer.errors import (
    EmbedderError,
    EmbedderUnreachable,
    InvalidArgument,
    ModelNotPulled,
)
from indexer.models import (
    ListSessionsRequest,
    ReadSessionRequest,
    ReindexOptions,
    Request,
    SearchRequest,
)
from indexer.service import SessionSearch
from mcp_server.server import build_server

# (MCP tool, CLI command, request model, the fields the tool takes: None for all of them)
SURFACES: list[tuple[str, str, type[Request], set[str] | None]] = [
    ("search", "search", SearchRequest, None),
    ("read_session", "read", ReadSessionRequest, None),
    ("list_sessions", "sessions", ListSessionsRequest, None),
    ("reindex", "reindex", ReindexOptions, {"full"}),  # the tool rebuilds or updates; pruning and dry runs are the CLI's
]
HOOK_ONLY = {"paths"}
MODEL = "qwen3-embedding:4b"
SESSION_WITH_PHRASE = "55604662-cf2a-4331-851a-ec234028f8ca"  # a shared transcript (spotter, branch master)
PHRASE = "mix phx.server doesnt seem to start"
E = TypeVar("E", bound=EmbedderError)  # ReindexOptions.paths: the Stop hook's session, not a user's option


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env_for(settings.ollama_host, settings.claude_dir, settings.data_dir), "PATH": os.environ["PATH"]}
    return subprocess.run([COMMAND, *args], check=False, capture_output=True, text=True, env=env, timeout=120)


def cli_json(settings: Settings, *args: str) -> dict:
    proc = cli(settings, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def subcommand(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def minimal(model: type[Request]) -> dict[str, str]:
    """A value for each required field: enough to build the request."""
    return {name: "x" for name, field in model.model_fields.items() if field.is_required()}


@pytest.mark.parametrize(("tool", "command", "model", "published"), SURFACES, ids=[s[0] for s in SURFACES])
async def test_every_request_field_is_an_mcp_argument_with_its_default_and_bounds(
    settings_factory: Settings, tool: str, command: str, model: type[Request], published: set[str] | None
) -> None:
    async with Client(build_server(settings_factory)) as client:
        schema = {t.name: t for t in (await client.list_tools()).tools}[tool]
    expected = model.model_json_schema()
    fields = [name for name in model.model_fields if published is None or name in published]
    assert list(schema.input_schema["properties"]) == fields  # flat arguments, the model's names, in its order
    for name in fields:
        assert schema.input_schema["properties"][name] == expected["properties"][name], name  # type, default, bounds, description
        assert f"    {name}: " in (schema.description or "")  # the tool's docs list it
    assert schema.input_schema.get("required", []) == [n for n in expected.get("required", []) if n in fields]


@pytest.mark.parametrize(("tool", "command", "model", "published"), SURFACES, ids=[s[1] for s in SURFACES])
def test_every_request_field_is_a_cli_option_with_the_models_choices_default_and_bounds(
    tool: str, command: str, model: type[Request], published: set[str] | None
) -> None:
    parser = subcommand(command)
    by_dest = {action.dest: action for action in parser._actions}
    properties = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        if name in HOOK_ONLY:
            assert name not in by_dest
            continue
        action = by_dest[name]
        assert (not action.option_strings) == field.is_required(), name  # required fields are positional
        choices = next((p["enum"] for p in [properties[name], *properties[name].get("anyOf", [])] if "enum" in p), None)
        assert (list(action.choices) if action.choices else None) == choices, name
    # An option not given takes the model's default, as an omitted MCP argument does.
    given = [*minimal(model).values()]
    assert _request(parser_args(command, given)) == model.parse(minimal(model))
    # A value out of bounds is refused by the model, naming the option's field.
    for name, spec in properties.items():
        for bound, step in (("maximum", 1), ("minimum", -1)):
            if bound in spec:
                flag = next(a for a in parser._actions if a.dest == name).option_strings[-1]
                with pytest.raises(InvalidArgument, match=name):
                    _request(parser_args(command, [*given, flag, str(spec[bound] + step)]))


def parser_args(command: str, args: list[str]) -> argparse.Namespace:
    return _parser().parse_args([command, *args])


@pytest.fixture
def settings_factory(ollama: OllamaStandIn, tmp_path: Path) -> Settings:
    (tmp_path / "claude" / "projects").mkdir(parents=True)
    return settings_for(ollama.url, tmp_path / "claude", tmp_path / "data")


@pytest.mark.slow
async def test_cli_search_takes_the_mcp_tools_filters_and_answers_the_same(fixture_index: Settings) -> None:
    arguments = {
        "query": PHRASE,
        "top_k": 3,
        "offset": 1,
        "mode": "keyword",
        "git_branch": "master",
        "kind": "exchange",
        "tool": "Bash",
        "include_subagents": False,
        "project": "spotter",
        "since": "2026-01-01",
    }
    async with Client(build_server(fixture_index)) as client:
        over_mcp = (await client.call_tool("search", arguments)).structured_content
    over_cli = cli_json(
        fixture_index,
        "search",
        PHRASE,
        "-k",
        "3",
        "--offset",
        "1",
        "--mode",
        "keyword",
        "--branch",
        "master",
        "--kind",
        "exchange",
        "--tool",
        "Bash",
        "--no-include-subagents",
        "--project",
        "spotter",
        "--since",
        "2026-01-01",
    )
    assert over_cli == over_mcp
    assert over_cli["results"] and all("Bash" in hit["tools"] and hit["git_branch"] == "master" for hit in over_cli["results"])
    unfiltered = cli_json(fixture_index, "search", PHRASE, "-k", "3", "--mode", "keyword")
    assert unfiltered["results"][0]["chunk_id"] not in {hit["chunk_id"] for hit in over_cli["results"]}  # --offset 1 skipped it


@pytest.mark.slow
async def test_cli_read_prints_what_read_session_returns(fixture_index: Settings) -> None:
    async with Client(build_server(fixture_index)) as client:
        hit = (await client.call_tool("search", {"query": PHRASE, "top_k": 1})).structured_content["results"][0]
        over_mcp = (
            await client.call_tool("read_session", {"session_id": SESSION_WITH_PHRASE, "around": hit["chunk_id"], "limit": 5})
        ).structured_content
    assert cli_json(fixture_index, "read", SESSION_WITH_PHRASE, "--around", hit["chunk_id"], "--limit", "5") == over_mcp
    assert 0 < len(over_mcp["messages"]) <= 5
    readable = cli(fixture_index, "read", SESSION_WITH_PHRASE, "--around", hit["chunk_id"], "--limit", "5")
    assert readable.returncode == 0 and f"session {SESSION_WITH_PHRASE}" in readable.stdout
    assert all(m["text"] in readable.stdout for m in over_mcp["messages"])  # the whole page, readable


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["search", "cart", "--top-k", "51"], "top_k: Input should be less than or equal to 50 (got 51)"),
        (["search", "   "], "query: the query is empty"),
        (["search", "cart", "--since", "2026-03-02", "--until", "2026-03-01"], "since (2026-03-02) is after until (2026-03-01)"),
        (["read", "s-1", "--limit", "0"], "limit: Input should be greater than or equal to 1 (got 0)"),
        (["sessions", "--since", "yesterday"], "since: 'yesterday' is not an ISO date"),
    ],
)
@pytest.mark.slow
def test_a_bad_option_is_one_line_and_exit_2(settings_factory: Settings, args: list[str], expected: str) -> None:
    proc = cli(settings_factory, *args)
    assert proc.returncode == 2 and proc.stderr.startswith(f"session-search: {expected}")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr and not proc.stdout


@pytest.mark.slow
async def test_an_unknown_session_is_a_failure_not_bad_usage(fixture_index: Settings) -> None:
    proc = cli(fixture_index, "read", "no-such-session")
    assert proc.returncode == 1 and "No indexed session has the id 'no-such-session'" in proc.stderr


@pytest.mark.slow
def test_commands_other_than_serve_leave_the_mcp_server_unimported(fixture_index: Settings) -> None:
    probe = (
        "import sys\n"
        "from indexer.cli import main\n"
        "codes = [main(['sessions', '--json']), main(['search', 'phoenix server', '--json']), main(['info', '--json'])]\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_server'))\n"
        "import mcp_server.server\n"  # the probe would see the server had a command imported it
        "after = bool([m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_server')])\n"
        "print(json.dumps({'codes': codes, 'before': before, 'after': after}), file=sys.stderr)\n"
    ).replace("import sys\n", "import json, sys\n", 1)
    env = {**env_for(fixture_index.ollama_host, fixture_index.claude_dir, fixture_index.data_dir), "PATH": os.environ["PATH"]}
    proc = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, env=env, timeout=120)
    facts = json.loads(proc.stderr.strip().splitlines()[-1])
    assert facts == {"codes": [0, 0, 0], "before": [], "after": True}


# -- errors carry facts ----------------------------------------------------------------------


async def facts_failure(embedder: Embedder, kind: type[E]) -> E:
    """The error the embedder raises when asked for its model's facts, which must be a kind."""
    try:
        with pytest.raises(kind) as failed:
            await embedder.facts()
    finally:
        await embedder.aclose()
    return failed.value


async def test_ollama_errors_name_host_model_and_status(ollama: OllamaStandIn) -> None:
    missing = OllamaEmbedder(ollama.url, "no-such-model", dimensions=None, timeout_s=5, num_ctx=4096, batch_size=8)
    not_pulled = await facts_failure(missing, ModelNotPulled)
    down = OllamaEmbedder("http://127.0.0.1:9", MODEL, dimensions=None, timeout_s=5, num_ctx=4096, batch_size=8)
    unreachable = await facts_failure(down, EmbedderUnreachable)
    assert (not_pulled.host, not_pulled.model, not_pulled.status) == (ollama.url, "no-such-model", 404)
    assert (unreachable.host, unreachable.model, unreachable.status) == ("http://127.0.0.1:9", MODEL, None)


async def test_an_openai_compatible_server_down_is_an_unreachable_embedder_not_ollama(ollama: OllamaStandIn) -> None:
    down = OpenAIEmbedder("http://127.0.0.1:9/v1", MODEL, api_key=None, dimensions=None, timeout_s=5, batch_size=8)
    unreachable = await facts_failure(down, EmbedderUnreachable)
    missing = OpenAIEmbedder(f"{ollama.url}/v1", "no-such-model", api_key=None, dimensions=None, timeout_s=5, batch_size=8)
    absent = await facts_failure(missing, EmbedderError)
    assert unreachable.host == "http://127.0.0.1:9/v1" and "Ollama" not in str(unreachable)
    # A 404 there may be a wrong path as well as a missing model: not Ollama's "pull it" error.
    assert absent.status == 404 and not isinstance(absent, ModelNotPulled)


@pytest.mark.parametrize(
    ("backend", "pulled"),
    [({}, False), ({"SESSION_SEARCH_EMBED_BACKEND": "openai", "SESSION_SEARCH_OPENAI_BASE_URL": "{url}/v1"}, None)],
    ids=["ollama", "openai"],
)
async def test_info_says_the_model_is_not_pulled_only_when_ollama_says_so(
    ollama: OllamaStandIn, tmp_path: Path, backend: dict[str, str], pulled: bool | None
) -> None:
    (tmp_path / "claude" / "projects").mkdir(parents=True)
    extra = {k: v.format(url=ollama.url) for k, v in backend.items()}
    settings = settings_for(ollama.url, tmp_path / "claude", tmp_path / "data", SESSION_SEARCH_MODEL="no-such-model", **extra)
    async with SessionSearch(settings) as index:
        info = await index.info()
    assert info.model_pulled is pulled and "no-such-model" in (info.ollama_error or "")
