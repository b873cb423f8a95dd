"""A query's words: what keyword search matches and what snippets and term weights look for."""

from __future__ import annotations

import re

MAX_QUERY_TERMS = 32
_TERM = re.compile(r"\w+")
_JOINED = re.compile(r"\w+(?:-\w+)+")
_ENDINGS = ("ing", "ed", "es", "s", "ly")
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "more",
        "my",
        "no",
        "not",
        "now",
        "of",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "up",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def query_terms(query: str) -> list[str]:
    """The words of a query, lower-cased and de-duplicated, in order."""
    return list(dict.fromkeys(t.lower() for t in _TERM.findall(query)))[:MAX_QUERY_TERMS]


def telling_terms(query: str) -> list[str]:
    """The query's words that tell chunks apart: all but the common ones, unless nothing else is left."""
    terms = query_terms(query)
    return [t for t in terms if t not in STOPWORDS] or terms


def word_stem(term: str) -> str:
    """A word without a plural, -ed, -ing or -ly ending: what its other forms begin with."""
    for ending in _ENDINGS:
        if term.endswith(ending) and len(term) - len(ending) >= 3:
            return term[: -len(ending)]
    return term


def joined_words(query: str) -> list[str]:
    """The words a query joins with hyphens, lower-cased: `continue-on-error`, `self-care`, and inside
    a flag, path or branch name (`--no-verify`, `fix/comment-attribution`). FTS5 and `query_terms`
    read them as separate words, which a chunk may hold apart."""
    return list(dict.fromkeys(m.lower() for m in _JOINED.findall(query)))


def starts_a_word(text: str, stem: str) -> bool:
    """Whether a word of text begins with stem. str.find, not a regex: a pattern that starts with
    `\\b` is tried at every position (10 ms for 100 hits, against well under 1 ms)."""
    at = text.find(stem)
    while at != -1:
        if at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_"):
            return True
        at = text.find(stem, at + 1)
    return False
