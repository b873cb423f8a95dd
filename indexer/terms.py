"""A query's words: what keyword search matches and what snippets and term weights look for."""

from __future__ import annotations

import re

MAX_QUERY_TERMS = 32
_TERM = re.compile(r"\w+")
STOPWORDS = frozenset(
    ["a", "about", "after", "again", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "before", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "my", "no", "not", "now", "of", "on", "once", "only", "or", "other", "our", "out", "over", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "up", "us", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your"]
)


def query_terms(query: str) -> list[str]:
    """The words of a query, lower-cased and de-duplicated, in order."""
    return list(dict.fromkeys(t.lower() for t in _TERM.findall(query)))[:MAX_QUERY_TERMS]
