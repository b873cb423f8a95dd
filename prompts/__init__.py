"""Prompt templates, one TOML file per embedding-model family: data, loaded by indexer.prompts."""
