"""The errors session-search raises. No third-party exception leaves the indexer.

    SessionSearchError            anything a user can act on; str() is the message to show
    ├── ConfigError               a setting has a bad value
    │   └── NoTranscripts         the Claude dir is wrong or holds no projects folder
    ├── DataDirError              the data dir cannot be created, read or written
    ├── InvalidArgument           a bad search or tool argument
    ├── EmbedderError             the embedding service failed
    │   ├── OllamaUnreachable     nothing answers at the host (or it timed out)
    │   ├── ModelNotPulled        the model is not on that host
    │   └── DimensionMismatch     vectors of the wrong length came back
    ├── StoreError                Chroma failed
    │   └── IndexEmpty            nothing has been indexed yet
    └── IndexBusy                 another process is writing the index

The CLI prints str(error) and exits non-zero; the MCP layer raises ToolError with
the same text.
"""


class SessionSearchError(Exception):
    """Base class: a failure with a message a person or a model can act on."""


class ConfigError(SessionSearchError):
    """A configuration value is invalid."""


class NoTranscripts(ConfigError):
    """The Claude dir does not exist, is not a folder, or has no projects folder."""


class DataDirError(SessionSearchError):
    """The data dir cannot be created, read or written."""


class InvalidArgument(SessionSearchError):
    """A search or tool argument is invalid."""


class EmbedderError(SessionSearchError):
    """The embedding service returned an error."""


class OllamaUnreachable(EmbedderError):
    """Ollama did not answer at the configured host."""


class ModelNotPulled(EmbedderError):
    """The embedding model is not available on the Ollama host."""


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
