"""Search without the query embedding, and where the time goes (per-stage timers)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Self

import base  # noqa: F401 - puts the repository and tests/ on sys.path first

from indexer.config import Settings

# -- search without the query embedding ------------------------------------------------------


class PrecomputedEmbedder:
    """Answers embed_one from a table filled before timing, with the vector the stand-in would
    return for that text (its `embed_text`, which drops a Qwen3 query instruction)."""

    def __init__(self, dims: int):
        self.dims = dims
        self.vectors: dict[str, list[float]] = {}
        self.misses = 0

    def add(self, text: str) -> None:
        from support.ollama_standin import embed_text

        if text not in self.vectors:
            self.vectors[text] = embed_text(text, self.dims)

    async def embed_one(self, text: str) -> list[float]:
        if text not in self.vectors:
            self.misses += 1
            self.add(text)
        return self.vectors[text]

    async def aclose(self) -> None:
        return None


def search_without_embedding(settings: Settings, embedder: PrecomputedEmbedder):
    """A SessionSearch whose every query embedder is `embedder` (Ollama is never asked)."""
    from indexer.service import SessionSearch

    index = SessionSearch(settings)
    index.resources.embedder_for = lambda *args, **kwargs: embedder  # type: ignore[method-assign]
    return index


# -- where the time goes ---------------------------------------------------------------------


class StageTimer:
    """Wraps named product functions with timers for the duration of a `with` block.

    stages: (owner, attribute, label); an attribute the product no longer has is skipped.
    Time is summed per (tag, label), where `tag` is whatever the caller set last. Works for
    functions run in worker threads and for coroutine functions.
    """

    def __init__(self, stages: Sequence[tuple[Any, str, str]]):
        self.stages = [(o, a, label) for o, a, label in stages if hasattr(o, a)]
        self.spent: dict[tuple[str, str], float] = {}
        self.calls: dict[tuple[str, str], int] = {}
        self.tag = ""
        self._originals: list[tuple[Any, str, Any]] = []

    def _add(self, label: str, seconds: float) -> None:
        key = (self.tag, label)
        self.spent[key] = self.spent.get(key, 0.0) + seconds
        self.calls[key] = self.calls.get(key, 0) + 1

    def _wrap(self, label: str, fn: Any) -> Any:
        import functools
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self._add(label, time.perf_counter() - started)

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - started)

        return timed

    def __enter__(self) -> Self:
        for owner, attr, label in self.stages:
            self._originals.append((owner, attr, vars(owner).get(attr)))  # None: inherited, not owned
            setattr(owner, attr, self._wrap(label, getattr(owner, attr)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._originals):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._originals.clear()

    def ms(self, tag: str, label: str, per: int = 1) -> float:
        return self.spent.get((tag, label), 0.0) * 1e3 / per
