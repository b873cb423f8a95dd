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
