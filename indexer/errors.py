"""The errors session-search raises. No third-party exception leaves the indexer.

    SessionSearchError            anything a user can act on; str() is the message to show
    ├── ConfigError               a setting has a bad value
    │   └── NoTranscripts         the Claude dir is wrong or holds no projects folder
    ├── DataDirError              the data dir cannot be created, read or written
    ├── InvalidArgument           a bad search or tool argument (.argument names it)
    ├── EmbedderError             the embedding service failed (.host, .model, .status)
    │   ├── EmbedderUnreachable   nothing answers at the host (or it timed out)
    │   ├── ModelNotPulled        Ollama answers but does not have the model
    │   └── DimensionMismatch     vectors of the wrong length came back
    ├── StoreError                Chroma failed
    │   └── IndexEmpty            nothing has been indexed yet
    └── IndexBusy                 another process is writing the index

The CLI prints str(error) and exits non-zero; the MCP layer raises ToolError with
the same text. The fields carry the facts for code that decides on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

SHOWN_INPUT_CHARS = 60  # a longer input is left out of the message (it would hide the rule it broke)


class SessionSearchError(Exception):
    """Base class: a failure with a message a person or a model can act on."""


class ConfigError(SessionSearchError):
    """A configuration value is invalid."""


class NoTranscripts(ConfigError):
    """The Claude dir does not exist, is not a folder, or has no projects folder."""


class DataDirError(SessionSearchError):
    """The data dir cannot be created, read or written."""


class InvalidArgument(SessionSearchError):
    """A search or tool argument is invalid; `argument` names it when one argument is at fault."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidArgument:
        """The first rule a request broke, in one line: `top_k: Input should be ... (got 0)`.

        The one place pydantic's errors become ours, for the CLI and the MCP tools alike.
        """
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        got = first.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) and len(repr(got)) <= SHOWN_INPUT_CHARS else ""
        problem = "is required" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
        return cls(f"{where}: {problem}{shown}" if where else f"{problem}{shown}", argument=where or None)


class EmbedderError(SessionSearchError):
    """The embedding service failed: at `host`, for `model`, with the HTTP `status` it answered (None without one)."""

    def __init__(self, message: str, *, host: str | None = None, model: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.host, self.model, self.status = host, model, status


class EmbedderUnreachable(EmbedderError):
    """Nothing answered at the embedding service's host, or not in time."""


class ModelNotPulled(EmbedderError):
    """Ollama answers, but the embedding model is not pulled there (`ollama pull` fixes it)."""


class DimensionMismatch(EmbedderError):
    """The embedder returned vectors whose length differs from the index's."""


class StoreError(SessionSearchError):
    """The vector store failed."""


class IndexEmpty(StoreError):
    """No index exists yet."""


class IndexBusy(SessionSearchError):
    """Another process holds the writer lock."""


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first of our errors in a task group's failure, else the first leaf."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, SessionSearchError)), leaves[0])


def error_reply(exc: SessionSearchError) -> dict[str, str]:
    """An error as another process sends it (the searcher, a reindex child); `error_from` raises it again."""
    return {"kind": type(exc).__name__, "message": str(exc)}


def error_from(found: object, sender: str) -> Exception:
    """An error another process sent, as the same exception class; an unexpected one stays unexpected."""
    details = found if isinstance(found, dict) else {}
    kind, message = str(details.get("kind", "")), str(details.get("message", found))
    cls = globals().get(kind)
    if isinstance(cls, type) and issubclass(cls, SessionSearchError):
        return cls(message)
    return RuntimeError(f"{sender} failed: {message}")
