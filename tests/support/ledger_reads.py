"""What a test reads from an index's ledger, through the product's `Ledger` API."""

from __future__ import annotations

from pathlib import Path

from indexer.ledger import Ledger


def served_name(data_dir: Path) -> str:
    """The name of the collection the index at data_dir serves."""
    ledger = Ledger(data_dir / "ledger.sqlite")
    try:
        assert ledger.active is not None
        return ledger.active
    finally:
        ledger.close()


def building_files(data_dir: Path) -> int:
    """How many files the index being built at data_dir holds so far (0: none is being built)."""
    if not (data_dir / "ledger.sqlite").exists():
        return 0
    ledger = Ledger(data_dir / "ledger.sqlite")
    try:
        return ledger.source_count(ledger.building) if ledger.building else 0
    finally:
        ledger.close()


def exchange_of(data_dir: Path, chunk_ids: list[str]) -> list[str]:
    """The exchange each served chunk belongs to: its first message's uuid, which all its windows share."""
    ledger = Ledger(data_dir / "ledger.sqlite")
    try:
        assert ledger.active is not None
        docs = ledger.docs_for(ledger.active, chunk_ids)
        return [str(docs[id_].values["group_uuid"]) for id_ in chunk_ids]
    finally:
        ledger.close()
