"""What a ranking returns: a stored chunk and how close it came, before fusion."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.chunk import MetadataValue


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A stored chunk found by one ranking: its distance (vectors) or bm25 (keywords), lower is better."""

    id: str
    text: str
    metadata: dict[str, MetadataValue]
    distance: float
