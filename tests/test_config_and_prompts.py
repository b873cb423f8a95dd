"""Settings from the environment and TOML, and the prompt templates per model family."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.paths import ROOT

from indexer.config import load_settings
from indexer.errors import ConfigError
from indexer.prompts import builtin_templates, template_for


def test_defaults_follow_claude_and_xdg_conventions(tmp_path: Path) -> None:
    settings = load_settings(environ={"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": "/c", "XDG_DATA_HOME": "/x"})
    assert settings.claude_dir == Path("/c") and settings.projects_dir == Path("/c/projects")
    assert settings.data_dir == Path("/x/session-search")
    assert settings.ollama_host == "http://127.0.0.1:11434"
    assert settings.model == "qwen3-embedding:4b"
    assert settings.chroma_url is None


def test_environment_overrides_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "nomic-embed-text"\nchunk_tokens = 300\ndata_dir = "/from/toml"\n')
    settings = load_settings(environ={"SESSION_SEARCH_CONFIG": str(config), "SESSION_SEARCH_DATA_DIR": "/from/env"})
    assert settings.model == "nomic-embed-text" and settings.chunk_tokens == 300
    assert settings.data_dir == Path("/from/env")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SESSION_SEARCH_CHUNK_TOKENS": "lots"}, "SESSION_SEARCH_CHUNK_TOKENS"),
        ({"SESSION_SEARCH_CHUNK_TOKENS": "5000"}, "SESSION_SEARCH_CHUNK_TOKENS"),
        ({"SESSION_SEARCH_CHUNKER": "paragraph"}, "SESSION_SEARCH_CHUNKER"),
        ({"SESSION_SEARCH_CHROMA_URL": "localhost:8000"}, "SESSION_SEARCH_CHROMA_URL"),
        ({"SESSION_SEARCH_DIMENSIONS": "7"}, "SESSION_SEARCH_DIMENSIONS"),
        ({"OLLAMA_HOST": "my host"}, "OLLAMA_HOST"),
        ({"SESSION_SEARCH_CONFIG": "/nonexistent/config.toml"}, "SESSION_SEARCH_CONFIG"),
    ],
)
def test_a_bad_value_gets_one_line_naming_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert str(caught.value).startswith(named)
    assert "\n" not in str(caught.value)


def test_unknown_and_bad_toml_keys_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("modle = 'typo'\n")
    with pytest.raises(ConfigError, match=r"modle in .*c.toml"):
        load_settings(environ={"SESSION_SEARCH_CONFIG": str(config)})


@pytest.mark.slow
def test_cli_prints_the_config_error_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "indexer"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SESSION_SEARCH_EMBED_BATCH_SIZE": "0"},
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "session-search: SESSION_SEARCH_EMBED_BATCH_SIZE: Input should be greater than or equal to 1 (got '0')"
    )


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("qwen3-embedding:4b", "qwen3-embedding"),
        ("qwen3-embedding:0.6b", "qwen3-embedding"),
        ("nomic-embed-text:latest", "nomic-embed-text"),
        ("mxbai-embed-large", "mxbai-embed-large"),
        ("bge-m3", "bge-m3"),
        ("all-minilm:l6-v2", "all-minilm"),
        ("snowflake-arctic-embed:335m", "snowflake-arctic-embed"),
        ("embeddinggemma", "embeddinggemma"),
        ("multilingual-e5-small", "e5"),
        ("intfloat/e5-base-v2", "e5"),
        ("jeffh/intfloat-multilingual-e5-large:f16", "e5"),
        ("multilingual-e5-large-instruct", "e5-instruct"),
        ("intfloat/e5-mistral-7b-instruct", "e5-instruct"),
        ("someone/custom-embedder", "default"),
    ],
)
def test_each_model_family_gets_its_template(model: str, family: str) -> None:
    assert template_for(model).family == family


def test_qwen3_queries_carry_the_instruction_and_documents_do_not() -> None:
    template = template_for("qwen3-embedding:4b")
    query = template.format_query("when did we fix the NaN embeddings?")
    assert query.startswith("Instruct: ") and query.endswith("\nQuery:when did we fix the NaN embeddings?")
    assert query.count("\n") == 1
    assert template.format_document("some {text} with braces") == "some {text} with braces"


def test_e5_prompts_mark_queries_and_passages() -> None:
    template = template_for("multilingual-e5-small")
    assert template.format_query("why did the pods restart?") == "query: why did the pods restart?"
    assert template.format_document("kubectl rollout restart") == "passage: kubectl rollout restart"


def test_a_template_file_overrides_the_builtin(tmp_path: Path) -> None:
    custom = tmp_path / "mine.toml"
    custom.write_text('family = "mine"\nquery = "q: {query}"\ndocument = "d: {text}"\n')
    assert template_for("qwen3-embedding:4b", custom).format_query("x") == "q: x"
    custom.write_text('family = "broken"\nquery = "no slot"\ndocument = "{text}"\n')
    with pytest.raises(ConfigError, match="must contain"):
        template_for("qwen3-embedding:4b", custom)


def test_every_builtin_template_is_valid() -> None:
    families = {t.family for t in builtin_templates()}
    assert families >= {
        "qwen3-embedding",
        "nomic-embed-text",
        "mxbai-embed-large",
        "bge-m3",
        "all-minilm",
        "snowflake-arctic-embed",
        "embeddinggemma",
        "e5",
        "e5-instruct",
        "default",
    }


@pytest.mark.slow
def test_the_wheel_ships_the_prompt_templates(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("session_search-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("session_search_prompts/") and n.endswith(".toml")}
    assert shipped == {p.name for p in (ROOT / "prompts").glob("*.toml")}
    assert "indexer/pipeline.py" in names and "mcp_server/server.py" in names
