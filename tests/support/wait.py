"""Waiting on observable state instead of sleeping a guessed time.

Both return whether the state was reached, so the test's own assert says what failed.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

import anyio

POLL_S = 0.05


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = POLL_S) -> bool:
    """True as soon as `predicate()` is true; False if it is still false after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


async def await_until(predicate: Callable[[], object | Awaitable[object]], timeout_s: float, poll_s: float = POLL_S) -> bool:
    """`wait_until` for async tests: polls without blocking the event loop; `predicate` may be async."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return True
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(poll_s)
