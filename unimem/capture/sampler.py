"""Sample MLX's allocator counters on a background thread, on a recording's clock.

The counters are global to MLX's allocator (no per-stream or per-device split)
and follow scheduling, not execution: memory is counted when an op is encoded
and freed when its last reference drops (each backend's allocator, e.g.
https://github.com/ml-explore/mlx/blob/v0.32.4/mlx/backend/no_gpu/allocator.cpp).
Samples therefore show what MLX has handed out, which the views label as such.
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import TYPE_CHECKING

import mlx.core as mx

from ..model.recording import MemorySample, Recording

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11


def sample_now(t: float) -> MemorySample:
    """One reading of active, cache and peak memory, stamped ``t``."""
    return MemorySample(t, mx.get_active_memory(), mx.get_cache_memory(), mx.get_peak_memory())


class MemorySampler:
    """Append a :class:`MemorySample` to ``recording.memory`` ``hz`` times a second."""

    def __init__(self, recording: Recording, t0: float, hz: float = 50.0) -> None:
        if not 0 < hz <= 10_000:
            raise ValueError(f"hz must be in (0, 10000], got {hz}")
        self.recording, self.t0, self.period = recording, t0, 1.0 / hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._thread = threading.Thread(target=self._run, name="unimem-memory", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.recording.memory.append(sample_now(perf_counter() - self.t0))
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
