"""`python -m mcp_server`: the MCP server over stdio, same as `session-search serve`."""

import sys

from mcp_server.server import serve

sys.exit(serve())
