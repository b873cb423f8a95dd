"""`python -m indexer`: the standalone reindex, same as `session-search reindex`."""

import sys

from indexer.cli import main

sys.exit(main(["reindex", *sys.argv[1:]]))
