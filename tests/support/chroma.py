"""A real `chroma run`, on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.wait import wait_until

CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chroma_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_chroma(url: str, timeout_s: float = 60) -> None:
    if not wait_until(lambda: chroma_up(url), timeout_s, poll_s=0.2):
        pytest.fail(f"chroma run did not start within {timeout_s:g} s")


def start_chroma(path: Path, port: int) -> subprocess.Popen:
    """`chroma run` on `path` and `port`, returned once it answers its heartbeat."""
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_chroma(f"http://127.0.0.1:{port}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc
