"""The stand-in moved to tests/support/ollama_standin.py. This path still runs it
(`python tests/ollama_standin.py --port 11434`) and still imports it (`from ollama_standin import ...`
with tests/ on sys.path), as the same module object."""

import sys

from support import ollama_standin as _standin

if __name__ == "__main__":
    sys.exit(_standin.main())
sys.modules[__name__] = _standin
