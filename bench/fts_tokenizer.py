"""Re-tokenize the keyword index of kept bench data dirs, to measure an FTS5 tokenizer without re-embedding.

    cp -a /tmp/locomo /tmp/locomo-porter                      # kept dirs from bench/locomo.py / fusion_lab.py capture
    python bench/fts_tokenizer.py /tmp/locomo-porter "porter unicode61 tokenchars '_'"
    PYTHONPATH=$PWD .venv-bench/bin/python bench/fusion_lab.py capture --keep /tmp/locomo-porter

Each `*/data/ledger.sqlite` under the folder gets its `words` table dropped and recreated with the
tokenizer, then rebuilt from `docs` (the product's triggers keep working: they name the table).
Only for copies: the product's own schema still says which tokenizer its ledgers use.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path


def retokenize(ledger: Path, tokenizer: str) -> None:
    db = sqlite3.connect(ledger)
    try:
        db.executescript(
            "DROP TABLE words;\n"
            f"CREATE VIRTUAL TABLE words USING fts5(text, content = 'docs', content_rowid = 'rowid', tokenize = \"{tokenizer}\");\n"
            "INSERT INTO words(words) VALUES ('rebuild');"
        )
        db.commit()
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a copy of kept data dirs")
    parser.add_argument("tokenizer", help="an FTS5 tokenize argument, e.g. \"porter unicode61 tokenchars '_'\"")
    args = parser.parse_args()
    ledgers = sorted(args.folder.glob("**/data/ledger.sqlite"))
    if not ledgers:
        print(f"no */data/ledger.sqlite under {args.folder}", file=sys.stderr)
        return 1
    for ledger in ledgers:
        retokenize(ledger, args.tokenizer)
        print(f"re-tokenized {ledger}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
