"""`python tests/ollama_standin.py --port 11434` still runs the stand-in, which lives in tests/support/."""

import sys

from support.ollama_standin import main

if __name__ == "__main__":
    sys.exit(main())
