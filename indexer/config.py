"""Settings: one pydantic model, read from the environment and an optional TOML file.

Precedence: environment variables, then the TOML file named by SESSION_SEARCH_CONFIG,
then defaults. TOML keys are the field names (`model = "..."`).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator

from indexer.errors import ConfigError

log = logging.getLogger(__name__)
SECRET_FIELDS = frozenset({"openai_api_key", "chroma_headers"})  # their values are never shown
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)

CONFIG_FILE_VAR = "SESSION_SEARCH_CONFIG"
PREFIX = "SESSION_SEARCH_"
# Read elsewhere: the hook guard, and the tests' fixture copy.
OTHER_VARS = {CONFIG_FILE_VAR, "SESSION_SEARCH_HOOK_CHILD", "SESSION_SEARCH_FIXTURES"}

# Field name -> environment variable. OLLAMA_HOST is Ollama's own variable.
ENV_VARS: dict[str, str] = {
    "claude_dir": "SESSION_SEARCH_CLAUDE_DIR",
    "data_dir": "SESSION_SEARCH_DATA_DIR",
    "ollama_host": "OLLAMA_HOST",
    "model": "SESSION_SEARCH_MODEL",
    "dimensions": "SESSION_SEARCH_DIMENSIONS",
    "chroma_url": "SESSION_SEARCH_CHROMA_URL",
    "chroma_headers": "SESSION_SEARCH_CHROMA_HEADERS",
    "chroma_tenant": "SESSION_SEARCH_CHROMA_TENANT",
    "chroma_database": "SESSION_SEARCH_CHROMA_DATABASE",
    "chunker": "SESSION_SEARCH_CHUNKER",
    "chunk_tokens": "SESSION_SEARCH_CHUNK_TOKENS",
    "chunk_overlap": "SESSION_SEARCH_CHUNK_OVERLAP",
    "tool_output_chars": "SESSION_SEARCH_TOOL_OUTPUT_CHARS",
    "embed_batch_size": "SESSION_SEARCH_EMBED_BATCH_SIZE",
    "embed_timeout_s": "SESSION_SEARCH_EMBED_TIMEOUT",
    "query_timeout_s": "SESSION_SEARCH_QUERY_TIMEOUT_S",
    "embed_concurrency": "SESSION_SEARCH_EMBED_CONCURRENCY",
    "refresh_minutes": "SESSION_SEARCH_REFRESH_MINUTES",
    "result_tokens": "SESSION_SEARCH_RESULT_TOKENS",
    "num_ctx": "SESSION_SEARCH_NUM_CTX",
    "prompt_file": "SESSION_SEARCH_PROMPT_FILE",
    "embed_backend": "SESSION_SEARCH_EMBED_BACKEND",
    "openai_base_url": "SESSION_SEARCH_OPENAI_BASE_URL",
    "rerank_url": "SESSION_SEARCH_RERANK_URL",
    "rerank_model": "SESSION_SEARCH_RERANK_MODEL",
    "rerank_timeout_s": "SESSION_SEARCH_RERANK_TIMEOUT",
    "rerank_depth": "SESSION_SEARCH_RERANK_DEPTH",
    "openai_api_key": "SESSION_SEARCH_OPENAI_API_KEY",
    "redact_patterns": "SESSION_SEARCH_REDACT_PATTERNS",
    "exclude": "SESSION_SEARCH_EXCLUDE",
    "codex_dir": "SESSION_SEARCH_CODEX_DIR",
    "gemini_dir": "SESSION_SEARCH_GEMINI_DIR",
    "agents": "SESSION_SEARCH_AGENTS",
    "recall": "SESSION_SEARCH_RECALL",
    "recall_min_similarity": "SESSION_SEARCH_RECALL_MIN_SIMILARITY",
    "recall_min_margin": "SESSION_SEARCH_RECALL_MIN_MARGIN",
    "recall_deadline_s": "SESSION_SEARCH_RECALL_DEADLINE",
    "shared_searcher": "SESSION_SEARCH_SHARED_SEARCHER",
    "searcher_idle_s": "SESSION_SEARCH_SEARCHER_IDLE_S",
}
AgentName = Literal["claude-code", "codex", "gemini-cli"]  # the names of indexer.agents.AGENTS, without importing the parsers
KNOWN_AGENTS: tuple[str, ...] = get_args(AgentName)


def default_claude_dir(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")


def default_codex_dir(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get("CODEX_HOME") or Path.home() / ".codex")


def default_gemini_dir(env: Mapping[str, str] = os.environ) -> Path:
    return Path.home() / ".gemini"


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "session-search"


@dataclass(frozen=True, slots=True)
class ChromaServer:
    """A Chroma server and how to reach it. The header values are secrets: kept out of repr."""

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    tenant: str | None = None
    database: str | None = None

    def describe(self) -> str:
        """Where the vectors live, in words for messages (never the headers)."""
        place = ", ".join(f"{k} {v}" for k, v in (("tenant", self.tenant), ("database", self.database)) if v)
        return f"the Chroma server at {self.url}" + (f" ({place})" if place else "")


class Settings(BaseModel):
    """Everything session-search can be told. Built once at the entry point and passed down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claude_dir: Path = Field(
        default_factory=default_claude_dir, description="Claude Code home; transcripts are under <dir>/projects."
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Where the index lives.")
    ollama_host: str = Field("http://127.0.0.1:11434", description="Ollama's address, as Ollama reads OLLAMA_HOST.")
    model: str = Field("qwen3-embedding:4b", min_length=1, description="Ollama embedding model.")
    dimensions: int | None = Field(
        None, ge=32, le=8192, description="Cut vectors to this length (MRL models); default: the model's own."
    )
    chroma_url: str | None = Field(
        None, description="Use a Chroma server (chroma run) at this URL instead of the embedded store."
    )
    chroma_headers: dict[str, SecretStr] = Field(
        {}, description="HTTP headers for the Chroma server (an auth proxy's or a hosted service's key); secret."
    )
    chroma_tenant: str | None = Field(None, min_length=1, description="The Chroma server's tenant (its default when unset).")
    chroma_database: str | None = Field(None, min_length=1, description="The Chroma server's database (its default when unset).")
    chunker: Literal["exchange", "message"] = Field("exchange", description="How transcripts are cut into chunks.")
    chunk_tokens: int = Field(400, ge=64, le=1200, description="Window size in tiktoken tokens.")
    chunk_overlap: int = Field(64, ge=0, description="Overlap between windows, in tokens.")
    tool_output_chars: int = Field(1500, ge=0, le=20000, description="Cap on the tool-result text kept per call.")
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Inputs per /api/embed request.")
    embed_timeout_s: float = Field(120.0, gt=0, description="Timeout of one Ollama request, in seconds.")
    query_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Deadline for embedding a search's query (and for info's questions to Ollama), in seconds."
    )
    embed_concurrency: int = Field(2, ge=1, le=32, description="Embed requests in flight at once.")
    refresh_minutes: float = Field(5.0, ge=0, description="The server reindexes at start and then this often; 0 turns it off.")
    result_tokens: int = Field(3000, ge=500, le=20000, description="Token budget of one search or read_session answer.")
    num_ctx: int = Field(4096, ge=512, description="Ollama num_ctx, sent identically on every call.")
    rerank_url: str | None = Field(
        None, description="A /rerank server (TEI, llama.cpp, vLLM) to reorder the top results; unset: off."
    )
    rerank_model: str | None = Field(None, description="The reranking model to name in each request, if the server wants one.")
    rerank_timeout_s: float = Field(
        2.0, gt=0, le=60, description="Time budget of one rerank request; past it, results keep their order."
    )
    rerank_depth: int = Field(20, ge=2, le=100, description="How many of the first results the reranker reorders.")
    prompt_file: Path | None = Field(None, description="A prompt-template TOML file to use instead of the built-in one.")
    embed_backend: Literal["ollama", "openai"] = Field(
        "ollama", description="Who embeds: Ollama, or an OpenAI-compatible server."
    )
    openai_base_url: str | None = Field(None, description="The OpenAI-compatible server, e.g. http://gpu-box:8080/v1.")
    openai_api_key: SecretStr | None = Field(None, description="Its API key; never logged or shown.")
    redact_patterns: dict[str, str] = Field({}, description="More secrets to redact: kind -> regular expression.")
    exclude: list[str] = Field([], description="Globs of projects (cwd), session ids or transcript paths never to index.")
    recall: bool = Field(False, description="The UserPromptSubmit hook quotes relevant past exchanges to Claude.")
    recall_min_similarity: float = Field(
        0.5, ge=0, le=1, description="Cosine similarity a past exchange needs to be quoted by recall."
    )
    recall_min_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="How far the best past exchange's similarity must stand above the fifth best's for recall to quote anything.",
    )
    recall_deadline_s: float = Field(
        1.3,
        gt=0,
        le=30,
        description="Seconds from the hook process's start by which recall must have its answer; past it, nothing is quoted.",
    )
    codex_dir: Path = Field(default_factory=default_codex_dir, description="Codex CLI home; rollouts are under <dir>/sessions.")
    gemini_dir: Path = Field(default_factory=default_gemini_dir, description="Gemini CLI home; chats are under <dir>/tmp.")
    agents: list[str] | None = Field(
        None, description="Which agents' sessions to index; default: every agent whose folder exists."
    )
    shared_searcher: bool = Field(
        True,
        description="Servers on one data dir search through one shared process holding the index; off: each server loads its own.",
    )
    searcher_idle_s: float = Field(
        60.0, ge=1, le=86400, description="Seconds the shared searcher stays after its last server left."
    )

    @field_validator("agents")
    @classmethod
    def _known_agents(cls, value: list[str] | None) -> list[str] | None:
        unknown = [name for name in value or [] if name not in KNOWN_AGENTS]
        if unknown:
            raise ValueError(f"unknown agent {unknown[0]!r}; the agents are {', '.join(KNOWN_AGENTS)}")
        if value is not None and not value:
            raise ValueError(f"name at least one of {', '.join(KNOWN_AGENTS)}")
        return list(dict.fromkeys(value)) if value is not None else None

    @field_validator("ollama_host")
    @classmethod
    def _host_has_no_spaces(cls, value: str) -> str:
        if not value.strip() or " " in value.strip():
            raise ValueError("must be a host, host:port or URL")
        return value.strip()

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url_is_http(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://127.0.0.1:8000")
        try:
            _ = parts.port  # reading it validates it
        except ValueError as exc:
            raise ValueError(f"bad port ({exc})") from None
        return value

    @field_validator("chroma_headers")
    @classmethod
    def _headers_are_sendable(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if any(c in secret.get_secret_value() for c in "\r\n\0"):
                raise ValueError(f"the value of {name} holds a line break or NUL")
        return value

    @model_validator(mode="after")
    def _server_options_need_a_server(self) -> Settings:
        if not self.chroma_url:
            given = [ENV_VARS[f] for f in ("chroma_headers", "chroma_tenant", "chroma_database") if getattr(self, f)]
            if given:
                raise ValueError(
                    f"{', '.join(given)} need SESSION_SEARCH_CHROMA_URL: the embedded store takes no headers, tenant or database"
                )
        return self

    @property
    def chroma_server(self) -> ChromaServer | None:
        """The Chroma server to use, with its headers revealed; None for the embedded store."""
        if not self.chroma_url:
            return None
        headers = {name: secret.get_secret_value() for name, secret in self.chroma_headers.items()}
        return ChromaServer(self.chroma_url, headers, self.chroma_tenant, self.chroma_database)

    @model_validator(mode="after")
    def _overlap_below_window(self) -> Settings:
        if self.chunk_overlap * 2 > self.chunk_tokens:
            raise ValueError("chunk_overlap must be at most half of chunk_tokens")
        return self

    @field_validator("rerank_url", "openai_base_url")
    @classmethod
    def _url_is_http(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            example = "http://gpu-box:8080/v1" if info.field_name == "openai_base_url" else "http://gpu-box:8080"
            raise ValueError(f"must look like {example}")
        return value or None

    @model_validator(mode="after")
    def _openai_needs_a_url(self) -> Settings:
        if self.embed_backend == "openai" and not self.openai_base_url:
            raise ValueError("SESSION_SEARCH_OPENAI_BASE_URL must be set when SESSION_SEARCH_EMBED_BACKEND=openai")
        return self

    @property
    def projects_dir(self) -> Path:
        return self.claude_dir / "projects"

    @property
    def agent_folders(self) -> dict[str, Path]:
        """Where each indexed agent's sessions are (agent name -> folder), in KNOWN_AGENTS order.

        Named agents always; by default, those whose home exists now (checked on each call,
        so an agent installed later is picked up by the next reindex).
        """
        homes = {"claude-code": self.claude_dir, "codex": self.codex_dir, "gemini-cli": self.gemini_dir}
        folders = {"claude-code": self.projects_dir, "codex": self.codex_dir, "gemini-cli": self.gemini_dir / "tmp"}
        chosen = self.agents if self.agents is not None else [name for name in KNOWN_AGENTS if homes[name].is_dir()]
        return {name: folders[name] for name in KNOWN_AGENTS if name in chosen}


def _from_env(field: str, raw: str) -> Any:
    """Environment values are strings; the structured settings take JSON, and exclude also a comma list."""
    if field in ("exclude", "agents") and not raw.lstrip().startswith("["):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if field in ("redact_patterns", "exclude", "agents", "chroma_headers"):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_VARS[field]}: not valid JSON ({exc})") from None
    return raw


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{CONFIG_FILE_VAR}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{CONFIG_FILE_VAR}: {path} is not valid TOML: {exc}") from None


def _source_name(field: str, from_env: set[str], toml_path: Path | None) -> str:
    if field in from_env:
        return ENV_VARS[field]
    if toml_path is not None:
        return f"{field} in {toml_path}"
    return field


def _one_line(error: ValidationError, from_env: set[str], toml_path: Path | None) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    got = first.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float) and field not in SECRET_FIELDS else ""
    return f"{_source_name(field, from_env, toml_path)}: {first['msg']}{shown}"


def warn_unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A misspelt SESSION_SEARCH_* variable would be ignored silently: say so on stderr (via logging)."""
    known = set(ENV_VARS.values()) | OTHER_VARS
    unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in known)
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see the README's Configuration table"
        log.warning("%s is not a session-search setting and is ignored%s", name, hint)
    return unknown


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, the optional TOML file and explicit overrides.

    Raises:
        ConfigError: with one line naming the bad setting.
    """
    env = os.environ if environ is None else environ
    warn_unknown_variables(env)
    values: dict[str, Any] = {}
    toml_path = Path(env[CONFIG_FILE_VAR]).expanduser() if env.get(CONFIG_FILE_VAR) else None
    if toml_path is not None:
        values.update(_read_toml(toml_path))
    from_env = {field for field, var in ENV_VARS.items() if env.get(var, "") != ""}
    values.update({field: _from_env(field, env[ENV_VARS[field]]) for field in from_env})
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("claude_dir", default_claude_dir(env))
    values.setdefault("data_dir", default_data_dir(env))
    values.setdefault("codex_dir", default_codex_dir(env))
    for key in ("claude_dir", "data_dir", "prompt_file", "codex_dir", "gemini_dir"):
        if isinstance(values.get(key), str):
            values[key] = Path(values[key]).expanduser().absolute()
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, from_env, toml_path)) from None
