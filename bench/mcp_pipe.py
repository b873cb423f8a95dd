"""MCP over raw pipes: JSON-RPC lines over a child's stdin and stdout."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from base import PROTOCOL

# -- MCP over raw pipes ----------------------------------------------------------------------


class McpPipe:
    """A child process spoken to in raw JSON-RPC lines, so every server gets the same client."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], stderr: Any = subprocess.DEVNULL):
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, bufsize=0)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, notify: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        ident = None
        if not notify:
            self._next_id += 1
            ident = message["id"] = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        return ident

    def _line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no answer from the server")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                piece = os.read(fd, 1 << 16)
                if not piece:
                    raise EOFError(f"the server closed stdout (exit {self.proc.poll()})")
                self._buffer += piece
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def answer(self, ident: int, timeout_s: float = 60.0) -> dict[str, Any]:
        """Read lines until the response to ident (notifications and logs on stdout are skipped)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            line = self._line(deadline)
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("id") == ident and ("result" in message or "error" in message):
                return message

    def request(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
        ident = self.send(method, params)
        assert ident is not None
        return self.answer(ident, timeout_s)

    def handshake(self) -> dict[str, Any]:
        """initialize, notifications/initialized, tools/list; returns the tools/list answer."""
        init = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
        self.request("initialize", init)
        self.send("notifications/initialized", notify=True)
        return self.request("tools/list", {})

    def close(self, timeout_s: float = 10.0) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM of the child, in kB."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found
