"""Waiting on observable state instead of sleeping a guessed time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

POLL_S = 0.05


def wait_until(predicate: Callable[[], object], timeout_s: float, message: str = "", poll_s: float = POLL_S) -> None:
    """Return as soon as `predicate()` is true; fail the test if it is still false after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"not true within {timeout_s:g} s: {getattr(predicate, '__name__', predicate)}")
        time.sleep(poll_s)


async def await_until(predicate: Callable[[], object | Awaitable[object]], timeout_s: float, message: str = "", poll_s: float = POLL_S) -> None:
    """`wait_until` for async tests: polls without blocking the event loop; `predicate` may be async."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"not true within {timeout_s:g} s: {getattr(predicate, '__name__', predicate)}")
        await anyio.sleep(poll_s)
