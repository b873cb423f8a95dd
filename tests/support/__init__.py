"""What the tests share, so that no test module imports another.

- `ollama_standin`: a real HTTP server speaking Ollama's API, with fault switches.
- `paths`: the repository root and the shared transcripts (`SESSION_SEARCH_FIXTURES`).
- `home`: the one factory for a Claude home, and transcript records as Claude Code writes them.
- `env`: the environment a user would set, as variables or as settings.
- `calls`: the service's calls a test makes in one line (reindex, search, read), and the stored ids.
- `processes`: the installed `session-search` command, run as the MCP server, the CLI or a hook.
- `chroma`: a real `chroma run` on a free port.
- `wait`: waiting on observable state instead of sleeping.
- `fuzz`: hypothesis strategies shared by the parser fuzz tests.
- `secrets_corpus`: planted secrets and near misses for the redaction tests.
"""
