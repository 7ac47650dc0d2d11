"""Measure a call: plain timing statistics, then one instrumented run.

The plain runs are what a user's program costs (call + ``mx.eval``, after
warm-up). The instrumented run is the same call with every op observed and
timed; its wall time over the plain median is reported as the cost of looking,
next to the timeline it produced. Two methods time it:

* ``native`` (the default where the native probe is built, ``capture/native_run.py``):
  every primitive walked, each CPU one timed at both ends on its stream's worker,
  one plain ``mx.eval`` per eval of the program. It times CPU streams only: a run
  with GPU primitives is recorded again with the hand-off method, and says so.
* ``segment``, ``op``, ``exclusive`` (``capture/recorder.py``): MLX calls seen from
  Python, handed to MLX with ``async_eval``, ends stamped by waiter threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

import mlx.core as mx

from .analysis.gpu import gpu_activity
from .capture import cuda_kernels, native, native_run
from .capture.call import Call, Placer, bind
from .capture.intercept import Interceptor
from .capture.recorder import Recorder
from .capture.sampler import sample_now
from .capture.streams import StreamLike
from .capture.trace import capture
from .checks import check_bool, check_int, given
from .devices import platform
from .errors import ArgumentTypeError, ArgumentValueError
from .model.graph import Graph
from .model.modes import MODES, Mode
from .model.recording import UNTRACKED_LANE, Recording, Timing

AUTO = "auto"  # the default: native where it is built, else segment


def time_plain(call: Call, repeat: int, warmup: int) -> Timing:
    """Wall time of ``repeat`` plain runs, each timed as a user's own loop would be.

    A timed run is ``mx.eval(fun(*args))`` and nothing else: arguments and
    streams are bound once, before the loop, and each run's outputs are freed
    inside the timed statement, as in the user's loop. (Outputs kept alive would
    make every later run write to fresh pages, and freeing them outside the
    clock would hide the cost of freeing.) ``repeat`` and ``warmup`` are checked by
    :func:`profile_call`, the door every measurement comes through.
    """
    fun, (args, kwargs) = call.fun, call.bound()
    for _ in range(warmup):  # warm-up runs also check that the function returns arrays
        mx.eval(call.outputs_of(fun(*args, **kwargs)))
    samples = []
    for i in range(repeat):
        t = perf_counter()
        if i == 0 and warmup == 0:  # no warm-up: the first timed run checks
            mx.eval(call.outputs_of(fun(*args, **kwargs)))
        else:
            mx.eval(fun(*args, **kwargs))
        samples.append(perf_counter() - t)
    return Timing(tuple(samples), warmup)


def drain(call: Call) -> None:
    """Wait for everything queued on the call's streams and the default streams."""
    streams = list(call.placement.resolve().values()) + [mx.default_stream(mx.cpu)]
    if mx.is_available(mx.gpu):
        streams.append(mx.default_stream(mx.gpu))
    for s in streams:
        mx.synchronize(s)


def new_recording(call: Call, mode: Mode, segment_size: int = 50) -> Recording:
    p = platform()
    return Recording(
        title=call.title,
        placement=call.placement_names,
        mode=mode,
        method=MODES[mode].method.format(size=segment_size),
        platform={"summary": p.summary, "backend": p.backend, "mlx": p.mlx_version},
    )


def resolve_mode(mode: str) -> Mode:
    """``auto`` is ``native`` where the native probe is built and matches MLX, else
    ``segment``; a mode asked for by name must exist (native must be available)."""
    accepted = f"{AUTO!r} or one of {tuple(MODES)}"
    if not isinstance(mode, str):
        raise ArgumentTypeError(f"mode must be {accepted}, got {given(mode)}")
    if mode == AUTO:
        return "native" if native.available() else "segment"
    if mode not in MODES:
        raise ArgumentValueError(f"mode must be {accepted}, got {mode!r}")
    if mode == "native" and not native.available():
        raise native.NativeUnavailableError(f"mode='native': {native.why_unavailable()}")
    return mode


def instrumented_run(call: Call, mode: Mode = "segment", *,
                     segment_size: int = 50) -> Recording:
    """One run of ``call`` with every MLX op observed and timed."""
    if mode == "native":
        return _native_run(call, segment_size)
    return _handed_off_run(call, mode, segment_size)


def _native_run(call: Call, segment_size: int) -> Recording:
    """The native method: CPU primitives stamped on their workers and, where CUPTI can
    trace (MLX's CUDA build with cupti-python), GPU kernels measured on the device; a run
    with GPU primitives and no CUPTI falls back to ``segment``."""
    recording = new_recording(call, "native")
    mx.eval(call.inputs)
    mx.reset_peak_memory()
    recording.memory.append(sample_now(0.0))
    captured = native_run.run(call)
    gpu = native_run.gpu_primitives(captured)
    if gpu and captured.kernels is None:
        fallback = _handed_off_run(call, "segment", segment_size)
        fallback.notes.insert(0, f"method: segment, not native: {gpu} primitives ran on a GPU "
                                 "stream, the native probe times CPU streams only, and GPU "
                                 f"kernels cannot be traced here ({cuda_kernels.why_unavailable()}"
                                 "; the call ran once natively to find out, then again with "
                                 "segment)")
        return fallback
    recording.wall = captured.wall
    recording.memory.append(sample_now(captured.wall))
    native_run.fill_recording(captured, recording)
    busy = gpu_activity(recording).summary()
    if busy:
        recording.notes.append(busy)
    recording.graph = native_run.to_graph(captured, call.title, call.placement_names,
                                          platform().mlx_version)
    recording.notes.append(f"distortion: {MODES['native'].distortion}")
    return recording


def _handed_off_run(call: Call, mode: Mode, segment_size: int) -> Recording:
    recording = new_recording(call, mode, segment_size)
    recorder = Recorder(recording, mode, segment_size=segment_size)
    inputs = call.inputs
    mx.eval(inputs)
    recorder.settle(inputs)
    mx.reset_peak_memory()
    t0 = perf_counter()
    outputs = None
    interceptor = Interceptor(recorder)
    try:
        with interceptor:
            outputs = call.run()
            recorder.finish(outputs)
        mx.eval(outputs)
    finally:
        # a second release finishes one an interrupt cut short (a no-op otherwise), so
        # nothing stays patched or registered whatever line the interrupt landed on
        interceptor.release()
        if outputs is None:  # the function raised: stop the waiters, drain MLX
            recorder.close()
            drain(call)
    recording.wall = perf_counter() - t0
    if recorder.untimed_calls:
        recording.notes.append(
            f"{recorder.untimed_calls} calls ran inside mx.grad/vmap/compile and were not "
            f"timed on their own; their work is in the '{UNTRACKED_LANE}' lane"
        )
    recording.notes.append(f"distortion: {MODES[mode].distortion}")
    return recording


def trace_call(call: Call) -> Graph:
    """The call's graph: walked natively where the probe is built (every primitive, on
    its real stream, nothing merged), else read from ``mx.export_function``."""
    if native.available():
        captured = native_run.run(call, evaluate=False)
        graph = native_run.to_graph(captured, call.title, call.placement_names,
                                    platform().mlx_version)
    else:
        graph = capture(call)
        graph.notes.append(f"not traced natively: {native.why_unavailable()}")
    fused = sum(n.name.startswith("Compiled") for n in graph.primitives)
    if call.rules and fused:
        graph.notes.append(f"{fused} compiled primitives (mx.compile kept on): the rules "
                           "reached their ops only when mx.compile traced them, and each "
                           "runs as one primitive on the stream it was called on")
    return graph


def profile(
    fun: Callable[..., Any],
    *args: Any,
    repeat: int = 20,
    warmup: int = 2,
    mode: str = AUTO,
    segment_size: int = 50,
    placement: Mapping[str, StreamLike] | Placer | None = None,
    trace: bool = True,
    **kwargs: Any,
) -> Recording:
    """Time ``fun(*args, **kwargs)`` and record one measured timeline of it.

    Stream parameters are the arguments given as MLX devices or streams, or as
    names ("cpu", "gpu", "cpu:1"); ``placement`` sets them by name instead. The
    result holds plain-run statistics (median, IQR, min over ``repeat`` runs
    after ``warmup``), the instrumented run's timeline and its overhead, and,
    with ``trace``, the graph MLX records for the call.
    """
    call = bind(fun, args, kwargs, placement)
    return profile_call(call, repeat=repeat, warmup=warmup, mode=mode,
                        segment_size=segment_size, trace=trace)


def profile_call(call: Call, *, repeat: int = 20, warmup: int = 2, mode: str = AUTO,
                 segment_size: int = 50, trace: bool = True) -> Recording:
    """The door every measurement comes through (``profile``, ``compare``, ``explore``):
    its arguments are checked here, once, before anything runs."""
    check_int("repeat", repeat, minimum=1, meaning="plain timed runs")
    check_int("warmup", warmup, minimum=0, meaning="untimed runs before them")
    check_int("segment_size", segment_size, minimum=1, meaning="MLX calls per hand-off")
    check_bool("trace", trace)
    method = resolve_mode(mode)
    call.placement.resolve()  # fail early and clearly (e.g. a GPU that is absent)
    timing = time_plain(call, repeat, warmup)
    recording = instrumented_run(call, method, segment_size=segment_size)
    recording.timing = timing
    if trace and recording.graph is None:
        recording.graph = trace_call(call)
    elif not trace:
        recording.graph = None
    return recording


def trace(
    fun: Callable[..., Any],
    *args: Any,
    placement: Mapping[str, StreamLike] | Placer | None = None,
    **kwargs: Any,
) -> Graph:
    """The graph MLX evaluates for ``fun(*args, **kwargs)``; its outputs are not evaluated.

    Every primitive is listed, internal ones included (Broadcast, AsType, the
    backward pass of ``mx.grad``), each with the stream MLX gave it, and every
    edge is classified the way ``mx.eval`` decides fences: same stream, cross
    stream, or device switch. With the native probe the function runs (its own
    ``mx.eval`` calls inside too) and what it returns is walked before any
    evaluation; without it, ``mx.export_function`` traces it with placeholders
    (which merges identical subgraphs, and fails on random ops and inner evals).
    """
    return trace_call(bind(fun, args, kwargs, placement))
