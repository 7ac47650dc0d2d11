"""Native capture: MLX's pending graph and per-primitive stream times, from C++.

The optional distribution ``unimem-native`` (``native/`` in this repository,
module ``unimem_native``) reaches what MLX's Python API does not expose:

* :func:`walk`: every pending primitive behind some arrays, with its stream,
  output shapes, dtypes and sizes, and which node produces each input. Before
  an eval the graph is there; the eval detaches it, so walk first.
* :func:`instrument`: wraps each pending CPU primitive so that one plain
  ``mx.eval`` afterwards stamps when its kernels ran, on the stream's own
  worker thread (:func:`records`). MLX's batching, threads and buffer donation
  stay as they are: no graph splitting, no extra evals.
* :func:`capture`: both in one pass, as an instrumented run uses them.

It is built against the installed MLX and valid only for that exact version.
Where it is missing or mismatched, :func:`available` is False,
:func:`why_unavailable` says why in one line, and unimem keeps its pure-Python
methods (``async_eval`` plus waiter threads, see ``recorder``). This module
imports cleanly either way; only calling the capture functions needs it.

Clock: record times are the native ``now_ns()`` clock (``CLOCK_MONOTONIC`` on
Linux, the clock of ``time.perf_counter()``); :func:`clock_offset` measures the
offset and its error bound.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

from ..errors import UnimemError
from .attribution import NodeEvent
from .call import flatten_arrays

BUILD_COMMAND = "pip install --no-build-isolation ./native"
_FALLBACK = "unimem uses its pure-Python capture (async_eval and waiter threads)"


class NativeUnavailableError(UnimemError, RuntimeError):
    """A native capture function was called but ``unimem_native`` cannot be used here."""


@dataclass
class _Loaded:
    module: Any  # unimem_native, or None
    reason: str | None  # why it is None


_loaded: _Loaded | None = None


def _load() -> _Loaded:
    """Import ``unimem_native`` once; remember the module or why it could not be used."""
    global _loaded
    if _loaded is None:
        try:
            _loaded = _Loaded(importlib.import_module("unimem_native"), None)
        except ImportError as e:
            if isinstance(e, ModuleNotFoundError) and e.name == "unimem_native":
                reason = f"unimem_native is not installed ({BUILD_COMMAND})"
            else:  # built for another MLX (the message says so), or a broken build
                reason = "unimem_native failed to import: " + " ".join(str(e).split())
            _loaded = _Loaded(None, reason)
    return _loaded


def available() -> bool:
    """Whether native capture can run here."""
    return _load().module is not None


def why_unavailable() -> str | None:
    """One line: which capture method runs and why; None when native capture is available."""
    reason = _load().reason
    return None if reason is None else f"{reason}; {_FALLBACK}"


def _native() -> Any:
    loaded = _load()
    if loaded.module is None:
        raise NativeUnavailableError(f"{loaded.reason}; {_FALLBACK}")
    return loaded.module


def features() -> dict[str, bool]:
    """What this build can do: ``cpu_timing``, and the GPU hooks ``cuda_marker`` and
    ``cupti_nodes`` (CUDA builds of MLX) and ``metal_timing`` (Metal; never run)."""
    return dict(_native().FEATURES)


@dataclass(slots=True)
class Output:
    """One output array of a pending primitive.

    Plain (not frozen) slotted dataclasses, here and below: a frozen one's ``__init__``
    costs about 2.5x more, which shows on 100,000-node graphs.
    """

    shape: tuple[int, ...]
    dtype: str  # MLX's name: "float32", ...
    nbytes: int


@dataclass(slots=True)
class PendingNode:
    """One pending primitive; a multi-output primitive is one node with several outputs.

    ``id`` is a process-wide serial: unique for the life of the process, also after the
    graph is freed, and the same in :func:`walk`, :func:`instrument` and :func:`records`.
    Each input is ``(producer id, output index)``, or ``(0, -1)`` when the input is not
    pending (already evaluated, or a constant).
    """

    id: int
    name: str  # MLX's primitive name: "Matmul", "Exp", "CompiledSinMultiply", ...
    device: str  # "cpu" or "gpu"
    stream: int  # MLX's stream index (global, in creation order)
    outputs: tuple[Output, ...]
    inputs: tuple[tuple[int, int], ...]
    wrapped: bool  # instrumented: it will be timed when evaluated


class PendingGraph:
    """The pending graph in post-order (producers before consumers), as columns.

    Kept columnar, as the native walk returns it, so that a 100,000-node walk costs a
    few list constructions; :meth:`nodes` builds objects when they are wanted. The
    columns are made on first use: a capture taken just before an eval holds only
    native numbers (no arrays, so no buffers) until then, which keeps the conversion
    out of the timed run.
    """

    __slots__ = ("_columns", "_walk")

    def __init__(self, walk: Any) -> None:
        self._walk = walk  # unimem_native.Walk
        self._columns: dict[str, list[Any]] | None = None

    @classmethod
    def from_columns(cls, columns: dict[str, list[Any]]) -> PendingGraph:
        """A graph from columns already made (stored captures, tests)."""
        graph = cls(None)
        graph._columns = columns
        return graph

    @property
    def columns(self) -> dict[str, list[Any]]:
        if self._columns is None:
            self._columns = self._walk.columns()
            self._walk = None
        return self._columns

    def __len__(self) -> int:
        return len(self._walk) if self._columns is None else len(self._columns["id"])

    @property
    def ids(self) -> list[int]:
        return self.columns["id"]

    @property
    def names(self) -> list[str]:
        return self.columns["name"]

    def nodes(self) -> list[PendingNode]:
        c = self.columns
        out_start, in_start, dim_start, dims = (
            c["out_start"], c["in_start"], c["dim_start"], c["dims"])
        dtype, nbytes, in_node, in_output = c["dtype"], c["nbytes"], c["in_node"], c["in_output"]
        outputs = [
            Output(tuple(dims[dim_start[j]:dim_start[j + 1]]), dtype[j], nbytes[j])
            for j in range(len(nbytes))
        ]
        inputs = list(zip(in_node, in_output))
        return [
            PendingNode(
                c["id"][i], c["name"][i], c["device"][i], c["stream"][i],
                tuple(outputs[out_start[i]:out_start[i + 1]]),
                tuple(inputs[in_start[i]:in_start[i + 1]]),
                c["wrapped"][i],
            )
            for i in range(len(self))
        ]


def walk(arrays: Any) -> PendingGraph:
    """The pending (not yet scheduled) graph behind ``arrays`` (an array or a tree of them).

    Every primitive the next eval of ``arrays`` would run, including random, backward
    (grad) and compiled ones, without merging equal subgraphs. Call it before the eval:
    evaluating detaches the graph.
    """
    return PendingGraph(_native().capture(flatten_arrays(arrays), False))


def capture(arrays: Any, *, gpu: bool = False) -> PendingGraph:
    """:func:`instrument` and :func:`walk` in one pass over the graph (each node visited
    once): what an instrumented run does at each eval point."""
    return PendingGraph(_native().capture(flatten_arrays(arrays), True, gpu))


def instrument(arrays: Any, *, gpu: bool = False) -> int:
    """Wrap each pending CPU primitive behind ``arrays`` so that its next eval is timed.

    Returns how many were wrapped. Then evaluate as usual (``mx.eval``, ``async_eval``)
    on this thread. Skipped: primitives already wrapped or already scheduled, calls made
    inside ``mx.compile``/``grad``/``vmap`` tracing, ``Copy`` and ``StopGradient`` (MLX's
    transforms recognise them by type), and GPU streams unless ``gpu`` and a GPU hook
    is compiled in (:func:`features`).
    """
    return int(_native().capture(flatten_arrays(arrays), True, gpu).wrapped_now)


SOURCES = ("cpu-stream", "metal-command-buffer")


@dataclass(slots=True)
class TimingRecord:
    """When one wrapped primitive ran, in the native clock (ns; see :func:`clock_offset`).

    For ``cpu-stream`` records, ``start``/``end`` are stamped on the stream's worker
    thread (``worker_tid``) when it reaches the primitive's kernels and when it has run
    them; ``host_begin``/``host_end`` bracket the primitive's eval call on the thread
    that called ``mx.eval`` (``host_tid``), where MLX allocates and enqueues the work.
    """

    id: int
    stream: int
    source: str
    start: int
    end: int
    worker_tid: int
    host_begin: int
    host_end: int
    host_tid: int

    @property
    def duration_ns(self) -> int:
        return self.end - self.start


def records(*, drain: bool = False) -> list[TimingRecord]:
    """Completed records, in wrapping order. A record appears only once both its END and
    HOST_END stamps are in; one whose primitive raised never appears. With ``drain``,
    returned (and failed or abandoned) records are removed from the native store."""
    c = _native().records(drain)
    sources = [SOURCES[s] for s in c["source"]]
    return [
        TimingRecord(*row)
        for row in zip(c["id"], c["stream"], sources, c["start"], c["end"], c["worker_tid"],
                       c["host_begin"], c["host_end"], c["host_tid"])
    ]


def pending_count() -> int:
    """Wrapped primitives not yet finished (never blocks): 0 once an eval is done."""
    return int(_native().pending_count())


def clear() -> None:
    """Forget every record (records still in flight finish into a discarded store)."""
    _native().clear()


def now_ns() -> int:
    """The native clock, in nanoseconds."""
    return int(_native().now_ns())


def start_node_capture(libcupti: str) -> str:
    """Subscribe the native probe to CUPTI's graph-node callbacks (CUDA builds), through
    the libcupti at ``libcupti`` (already loaded by cupti-python). "" when subscribed, else
    why not: built without CUPTI's headers, or another tool holds CUPTI."""
    return str(_native().start_node_capture(libcupti))


def stop_node_capture() -> None:
    """Unsubscribe from CUPTI's callbacks (a no-op when not subscribed)."""
    _native().stop_node_capture()


def node_events(*, drain: bool = False) -> list[NodeEvent]:
    """The graph nodes created or cloned since subscribing, each with the primitive being
    encoded on its thread then (see :mod:`.attribution`)."""
    c = _native().node_events(drain)
    return [NodeEvent(n, p, o, bool(k))
            for n, o, p, k in zip(c["node"], c["original"], c["primitive"], c["cloned"])]


def encoding_primitive() -> int:
    """The id of the GPU primitive being encoded on this thread, or 0 (CUDA builds with
    ``cuda_marker`` only): for a CUPTI callback that runs on the encoding thread."""
    return int(_native().encoding_primitive())


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """``perf_counter_ns() - now_ns()``, within ``± error_ns``."""

    offset_ns: int
    error_ns: int

    def to_perf_counter(self, t_ns: int) -> float:
        """A native timestamp as a ``time.perf_counter()`` value (seconds)."""
        return (t_ns + self.offset_ns) / 1e9


def clock_offset(samples: int = 200) -> ClockOffset:
    """Measure the native clock against ``time.perf_counter_ns`` by bracketing: of
    ``samples`` reads ``perf_counter_ns(), now_ns(), perf_counter_ns()``, the tightest
    pair bounds when ``now_ns()`` was read."""
    native_now = _native().now_ns
    best_gap, best_offset = -1, 0
    for _ in range(samples):
        before = time.perf_counter_ns()
        t = native_now()
        after = time.perf_counter_ns()
        if best_gap < 0 or after - before < best_gap:
            best_gap, best_offset = after - before, (before + after) // 2 - t
    return ClockOffset(best_offset, (best_gap + 1) // 2)
