"""Hypothesis strategies shared by the parser fuzz tests: wrong values, junk bytes, deep nesting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from indexer.chunk import ChunkerSpec

# A small window, so that short fuzzed exchanges are windowed too.
SPECS = [ChunkerSpec("exchange", 400, 64, 1500), ChunkerSpec("message", 48, 16, 100)]

TRICKY_STRINGS = [
    "text", "tool_use", "tool_result", "image", "base64", "user", "assistant", "summary", "progress", "",
    "0001-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "2026-02-30T00:00:00Z",
    "[Request interrupted by user]", "<system-reminder>x</system-reminder>", "<command-name>", "\x00", "\u2028", " \n ",
]  # fmt: skip
KEYS = ["type", "text", "content", "id", "name", "input", "tool_use_id", "is_error", "message", "uuid", "source", "data"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.sampled_from(TRICKY_STRINGS))
# json.dumps writes NaN and Infinity for the floats: lines orjson rejects and json takes.
WRONG_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a decoded record, the record itself included."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from paths(item, (*path, key))


def replace_at(record: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return record


def nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "dict":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"type":"user","uuid":"deep","message":{"content":' + b"[" * depth + b"]" * depth + b"}}"


def insert(raw: bytes, at: int, junk: bytes) -> bytes:
    at %= len(raw) + 1
    return raw[:at] + junk + raw[at:]


def cut_short(lines: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return lines.flatmap(lambda raw: st.integers(0, len(raw)).map(lambda k: raw[:k]))


JUNK = st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\ud83d", b"\n", b'"', b"}", b"{", b"\\"])
DEEP = st.builds(nested, st.sampled_from([10, 999, 1024, 1025, 10_000]), st.sampled_from(["list", "dict", "record"]))
