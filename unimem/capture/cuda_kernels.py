"""What the GPU ran, from NVIDIA's CUPTI: every kernel, copy and set, timed on the device.

On MLX's CUDA build, `cupti-python <https://docs.nvidia.com/cupti-python/>`_ (NVIDIA's
bindings of the CUPTI Activity API, the ``cuda13`` extra) lets this process ask the
driver for a record of each kernel, memcpy and memset it ran, with start and end
stamped on the GPU. Nothing in MLX changes: the run is one plain ``mx.eval``, with
MLX's own CUDA-graph batching. The records arrive in buffers that CUPTI hands back
on a flush (:meth:`KernelTrace.stop`, or :meth:`KernelTrace.poll` while a watch runs);
they are turned into plain data at once (``cupti_records``). Besides kernels, copies
and sets: the host's synchronisation calls, the CUDA events they wait for, and the
pages of managed memory the driver migrates on faults.

Which primitive launched each kernel is found by :mod:`.attribution`, from graph-node
callbacks that the native probe takes in C++ (``unimem_native.start_node_capture``).

Only one tool can hold CUPTI at a time on CUDA 13.0-13.2 drivers (Nsight Systems,
``torch.profiler``): where it is taken, :func:`why_unavailable` says so and unimem
keeps its hand-off method for GPU streams.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

import mlx.core as mx

from . import native
from .cupti_records import (
    FIELDS,
    UM_CPU_FAULT,
    UM_DEVICE_TO_HOST,
    UM_GPU_FAULT,
    UM_HOST_TO_DEVICE,
    KernelCapture,
    add_record,
)

# Activity kinds recorded. SYNCHRONIZATION and CUDA_EVENT cost nothing measurable on
# top of kernels once the first buffer is warm (H200, all-GPU `fun`: 1.11x vs 1.13x,
# paired medians over 15 rounds); UNIFIED_MEMORY_COUNTER needs its counters configured
# first (see _Cupti.configure_unified_memory).
_KINDS = ("CONCURRENT_KERNEL", "MEMCPY", "MEMSET", "SYNCHRONIZATION", "CUDA_EVENT")
_UM_KIND = "UNIFIED_MEMORY_COUNTER"


class _Cupti:
    """cupti-python, loaded once; its buffer callbacks registered once per process."""

    def __init__(self) -> None:
        self.module: Any = None
        self.reason: str | None = None
        self.libcupti = ""
        self.sink: list[dict[str, Any]] | None = None
        self.lock = threading.Lock()
        self.registered = False
        self.unified_memory: str | None = None  # "" once configured, else why not

    def configure_unified_memory(self) -> str:
        """Configure CUPTI's unified-memory counters once per process: migrations both
        ways, CPU and GPU page faults. "" when configured, else why not, in words.

        CUPTI answers ``CUPTI_ERROR_NOT_READY`` before the driver is initialised, so a
        tiny GPU op runs first (measured on an H200: configured before MLX had touched
        CUDA it failed, after it worked)."""
        if self.unified_memory is None:
            cupti = self.module
            kinds = (UM_HOST_TO_DEVICE, UM_DEVICE_TO_HOST, UM_CPU_FAULT, UM_GPU_FAULT)
            try:
                mx.eval(mx.zeros((1,), stream=mx.gpu))
                config = cupti.ActivityUnifiedMemoryCounterConfig(len(kinds))
                for i, kind in enumerate(kinds):
                    config[i].scope = 1  # CUPTI_..._SCOPE_PROCESS_SINGLE_DEVICE
                    config[i].device_id = 0  # MLX's gpu device: CUDA device 0
                    config[i].enable = 1
                    config[i].kind = kind
                cupti.activity_configure_unified_memory_counter(config.ptr, len(kinds))
                self.unified_memory = ""
            except Exception as e:  # noqa: BLE001 - any failure: recorded without them
                self.unified_memory = f"CUPTI's unified-memory counters cannot be set: {e}"
        return self.unified_memory

    def load(self) -> Any:
        if self.module is None and self.reason is None:
            self.reason = self._load()
        return self.module

    def _load(self) -> str | None:
        if not (mx.is_available(mx.gpu) and mx.cuda.is_available()):
            return "MLX has no CUDA GPU here"
        try:
            cupti = importlib.import_module("cupti.cupti")
        except ImportError as e:
            return (f"cupti-python is not installed ({e.name or e}): "
                    "pip install 'unimem[cuda13]'")
        try:
            cupti.get_timestamp()  # loads libcupti
        except Exception as e:  # noqa: BLE001 - any CUPTI failure means: not here
            return f"CUPTI cannot start: {e}"
        self.libcupti = _loaded_path("libcupti")
        self.module = cupti
        return None

    def _done(self, activities: list[Any]) -> None:
        kinds = self.module.ActivityKind
        names = {kinds.CONCURRENT_KERNEL: "kernel", kinds.KERNEL: "kernel",
                 kinds.MEMCPY: "memcpy", kinds.MEMSET: "memset",
                 kinds.SYNCHRONIZATION: "sync", kinds.CUDA_EVENT: "cuda_event",
                 kinds.UNIFIED_MEMORY_COUNTER: "um"}
        out = []
        for a in activities:
            kind = names.get(a.kind)
            if kind is not None:
                rec = {f: getattr(a, f) for f in FIELDS[kind] if hasattr(a, f)}
                rec["kind"] = kind
                out.append(rec)
        with self.lock:
            if self.sink is not None:
                self.sink.extend(out)


_cupti = _Cupti()


def _loaded_path(stem: str) -> str:
    """The file of a shared library this process has loaded (Linux), or ""."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if stem in path.rsplit("/", 1)[-1]:
                    return path
    except OSError:
        pass
    return ""


def available() -> bool:
    """Whether GPU kernels can be traced with CUPTI here."""
    return _cupti.load() is not None and native.available()


def why_unavailable() -> str | None:
    """One line: why CUPTI tracing cannot run here; None when it can."""
    _cupti.load()
    if _cupti.reason:
        return _cupti.reason
    if not native.available():
        return f"the native probe is needed for CUPTI tracing: {native.why_unavailable()}"
    return None


def _clock(cupti: Any, samples: int = 30) -> tuple[int, int]:
    """``perf_counter_ns() - cupti.get_timestamp()`` from the tightest of ``samples``
    bracketed reads, and its error bound (half the bracket)."""
    best = None
    for _ in range(samples):
        before = time.perf_counter_ns()
        t = cupti.get_timestamp()
        after = time.perf_counter_ns()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2 - t)
    assert best is not None
    return best[1], (best[0] + 1) // 2


def _warm_up(cupti: Any) -> int:
    """Run one tiny GPU op and wait for it; return CUPTI's clock afterwards.

    The first record after tracing is enabled makes CUPTI hand out a fresh activity
    buffer, which cost 0.5-0.8 ms of the traced run on an H200 (an MLP step of 0.9 ms
    ran 1.6x its plain time with activity tracing alone, about 1.1x once a buffer was
    in use). This takes that cost here, before the run starts; the warm-up's records
    are dropped by time.
    """
    mx.eval(mx.zeros((1,), stream=mx.gpu) + 1)
    mx.synchronize()
    return int(cupti.get_timestamp())


class KernelTrace:
    """CUPTI activity tracing (and graph-node callbacks) around one run.

    ``start`` before the run's first eval, ``stop`` after the last: it flushes CUPTI's
    buffers, disables every activity kind it enabled and unsubscribes, so no record
    leaks into the next recording and nothing stays subscribed.
    """

    def __init__(self) -> None:
        self._sink: list[dict[str, Any]] = []
        self._nodes_why_not = ""
        self._started = False
        self._since = 0  # CUPTI's clock when the warm-up had finished: earlier records go
        # CUPTI's clock when stop began: synchronisation calls after it are stop's own
        self._until: int | None = None
        self._kinds: list[str] = []
        self._um_why_not = ""
        self._clock = (0, 0)  # (offset, error) measured at start, for records read live

    def start(self) -> None:
        cupti = _cupti.load()
        if cupti is None:
            raise RuntimeError(why_unavailable() or "CUPTI is not available")
        if not _cupti.registered:
            cupti.activity_register_callbacks(lambda: (8 << 20, 0), _cupti._done)
            _cupti.registered = True
        cupti.activity_flush_all(1)  # records of earlier work go nowhere
        with _cupti.lock:
            _cupti.sink = self._sink
        self._kinds = list(_KINDS)
        self._until = None
        self._um_why_not = _cupti.configure_unified_memory()
        if not self._um_why_not:
            self._kinds.append(_UM_KIND)
        enabled = []
        try:
            for k in self._kinds:
                cupti.activity_enable(getattr(cupti.ActivityKind, k))
                enabled.append(k)
        except Exception:
            for k in enabled:
                cupti.activity_disable(getattr(cupti.ActivityKind, k))
            with _cupti.lock:
                _cupti.sink = None
            raise
        self._since = _warm_up(cupti)
        self._clock = _clock(cupti)
        native.node_events(drain=True)
        self._nodes_why_not = native.start_node_capture(_cupti.libcupti)
        self._started = True

    @property
    def clock_at_start(self) -> tuple[int, int]:
        """``perf_counter_ns() - CUPTI timestamp`` and its error, measured at start."""
        return self._clock

    def poll(self) -> KernelCapture:
        """What has come in since the last poll (or the start), for a live recording:
        CUPTI's buffers are flushed (forced: a partly filled buffer too) and the node
        events drained. Times map with the clock offset measured at start."""
        cupti = _cupti.module
        if not self._started:
            raise RuntimeError("KernelTrace.poll() outside start() ... stop()")
        cupti.activity_flush_all(1)
        with _cupti.lock:
            fresh = list(self._sink)
            self._sink.clear()  # the list CUPTI's callback fills: emptied in place
        out = self._capture(self._clock, fresh)
        if not self._nodes_why_not:
            out.node_events = native.node_events(drain=True)
        return out

    def _capture(self, clock: tuple[int, int], records: list[dict[str, Any]]
                 ) -> KernelCapture:
        out = KernelCapture(offset_ns=clock[0], error_ns=clock[1],
                            node_events_why_not=self._nodes_why_not,
                            migrations_why_not=self._um_why_not)
        until = self._until
        for fields in records:
            if "start" in fields and int(fields["start"]) < self._since:
                continue  # the warm-up's own work
            if (until is not None and fields.get("kind") == "sync"
                    and int(fields["start"]) >= until):
                continue  # stop's own mx.synchronize, not the run's
            add_record(out, fields)
        return out

    def stop(self) -> KernelCapture:
        cupti = _cupti.module
        if not self._started:
            raise RuntimeError("KernelTrace.stop() without start()")
        self._started = False
        self._until = int(cupti.get_timestamp())
        try:
            mx.synchronize()
            cupti.activity_flush_all(1)
        finally:
            native.stop_node_capture()
            for k in self._kinds:
                cupti.activity_disable(getattr(cupti.ActivityKind, k))
            with _cupti.lock:
                _cupti.sink = None
        out = self._capture(_clock(cupti), self._sink)
        waits = {s.sync_id for s in out.syncs}  # an event joins a wait of this run, or goes
        out.events = [e for e in out.events if e.sync_id in waits]
        if not self._nodes_why_not:
            out.node_events = native.node_events(drain=True)
        try:
            out.dropped = int(cupti.activity_get_num_dropped_records(None, 0))
        except Exception:  # noqa: BLE001 - the count is informative only
            out.dropped = 0
        return out
