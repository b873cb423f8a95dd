"""Chroma writes from a child process, for big runs into the embedded store.

chromadb's Rust bindings hold the GIL for the whole of an upsert (a pure-Python thread runs at
about 14% of its speed meanwhile), so in one process every write stalls the event loop that
parses transcripts and sends and decodes embedding requests: nothing overlaps. A child process
that owns the collection's writes lets them run beside the rest. A Chroma server needs none of
this: its client waits on HTTP, which releases the GIL.

The child shares the reindex's writer lock (the parent hands it the lock's file descriptor), so
if the parent dies mid-run the lock stays held until the child has finished its last write and
exited: two processes never write one index at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path
from typing import Any

from indexer.chunk import Chunk
from indexer.errors import StoreError
from indexer.store import WRITE_BATCH, VectorCollection

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 60.0  # a last write of 1,000 vectors takes a few seconds; more means it is stuck


class ChildWrites(VectorCollection):
    """A collection whose upserts and deletes run in a child process; reads stay in this one."""

    def __init__(self, collection: VectorCollection, chroma_dir: Path, lock_fd: int):
        super().__init__(collection._collection, collection._errors)
        context = multiprocessing.get_context("spawn")  # forking a process with threads can deadlock
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, str(chroma_dir), self.name), daemon=True, name="chroma-writer"
        )
        self._process.start()
        child_end.close()
        self._lock = threading.Lock()
        send_handle(self._conn, lock_fd, self._process.pid)
        try:
            self._call("open", [], None)
        except StoreError:
            self._process.join(CLOSE_TIMEOUT_S)
            raise
        log.info("Chroma writes go through a child process (pid %s)", self._process.pid)

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        import numpy as np

        for start in range(0, len(chunks), WRITE_BATCH):
            part = chunks[start : start + WRITE_BATCH]
            self._call("store vectors", [c.id for c in part], np.asarray(vectors[start : start + WRITE_BATCH], dtype=np.float32))

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), WRITE_BATCH):
            self._call("delete chunks", list(ids[start : start + WRITE_BATCH]), None)

    def close(self) -> None:
        """Let the last write finish, then stop the child."""
        try:
            with self._lock:
                self._conn.send(("close", [], None))
        except OSError:
            pass  # already gone
        self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            log.warning("the Chroma writer process did not stop in %.0f s; terminating it", CLOSE_TIMEOUT_S)
            self._process.terminate()
            self._process.join()
        self._conn.close()

    def _call(self, action: str, ids: list[str], payload: Any) -> None:
        with self._lock:
            try:
                self._conn.send((action, ids, payload))
                status, message = self._conn.recv()
            except (EOFError, OSError):
                self._process.join(1.0)
                raise StoreError(
                    f"Chroma failed to {action} ({self._errors.where}): its writer process died (exit code {self._process.exitcode})."
                ) from None
        if status != "ok":
            raise StoreError(f"Chroma failed to {action} ({self._errors.where}): {message}")


def _serve(conn: Connection, chroma_dir: str, name: str) -> None:
    """The child: apply writes to one collection until told to close or the parent goes away."""
    os.dup2(2, 1)  # stdout may be an MCP stdio stream: nothing may be written to it
    # Ctrl-C reaches the whole process group: the parent handles it and closes this child after its last write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lock_fd = recv_handle(conn)  # held until this process exits
    try:
        collection = _open(chroma_dir, name)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            action, ids, payload = conn.recv()
        except (EOFError, OSError):
            break  # the parent died: stop after the write in hand (none) and let the lock go
        if action == "close":
            break
        try:
            if action == "store vectors":
                collection.upsert(ids=ids, embeddings=payload)
            elif action == "delete chunks":
                collection.delete(ids=ids)
            conn.send(("ok", None))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    os.close(lock_fd)


def _open(chroma_dir: str, name: str) -> Any:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=chroma_dir, settings=Settings(anonymized_telemetry=False, _env_file=None))
    return client.get_collection(name, embedding_function=None)
