"""Measured ends: a waiter thread per stream stamps when each handed-off op completes.

MLX has no completion callback, so a thread per lane blocks in ``mx.eval`` on
each op the recorder handed off, in hand-off order (a stream is a FIFO), and
stamps the moment it returns: a measured end, late by the waiter's wake-up. It
never waits on the op's own outputs: waiting on an array resets its completion
event while the user's thread may be reading it for the next op (a crash, seen
here). It waits on the op's private marker instead, a ``stop_gradient`` of the
last output on the same stream that the recorder hands off in the same
``async_eval``.
"""

from __future__ import annotations

import queue
import threading
from time import perf_counter

import mlx.core as mx

from ..model.recording import Op, Recording
from .sampler import sample_now


class Waiters:
    """One thread per lane: wait for each handed-off op in order, stamp its end."""

    def __init__(self, recording: Recording, t0: float, sample_memory: bool) -> None:
        self._recording, self._t0, self._sample = recording, t0, sample_memory
        self._queues: dict[int, queue.SimpleQueue[tuple[Op, mx.array] | None]] = {}
        self._threads: list[threading.Thread] = []

    def submit(self, op: Op, marker: mx.array) -> None:
        q = self._queues.get(op.lane)
        if q is None:
            q = self._queues[op.lane] = queue.SimpleQueue()
            t = threading.Thread(target=self._wait, args=(q,), daemon=True,
                                 name=f"unimem-waiter-{op.lane}")
            t.start()
            self._threads.append(t)
        q.put((op, marker))

    def _wait(self, q: queue.SimpleQueue[tuple[Op, mx.array] | None]) -> None:
        while (item := q.get()) is not None:
            op, marker = item
            try:
                mx.eval(marker)
            except Exception as exc:  # noqa: BLE001 - the main thread sees it too; record it
                op.detail = f"failed: {exc}"
            op.end = perf_counter() - self._t0
            del marker, item
            if self._sample:
                self._recording.memory.append(sample_now(op.end))

    def close(self) -> None:
        for q in self._queues.values():
            q.put(None)
        for t in self._threads:
            t.join()
