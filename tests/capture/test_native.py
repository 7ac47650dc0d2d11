"""Native capture (``unimem_native``): graph walk, per-primitive stream timing, fallback.

Each timing check evaluates a workload twice, once plainly and once after walk +
instrument, and requires bit-identical outputs plus a consistent timeline: one record
per wrapped primitive, each stream on one worker thread of its own (never the eval
thread), primitives in FIFO order per stream, and no consumer starting before its
producer ended. CI builds the module (``make``); without it they skip with the reason.
"""

from __future__ import annotations

import gc
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx import nn

from unimem.capture import native
from unimem.capture.call import flatten_arrays

needs_native = pytest.mark.skipif(
    not native.available(), reason=native.why_unavailable() or "native capture available")


@pytest.fixture(autouse=True)
def _on_the_cpu() -> Iterator[None]:
    """The native probe times CPU streams; where MLX has a GPU, its default device is
    the GPU, so these tests make their unplaced arrays on the CPU's default stream."""
    with mx.stream(mx.cpu):
        yield


@pytest.fixture(autouse=True)
def _fresh_store() -> None:
    if native.available():
        native.clear()


@pytest.fixture(scope="module")
def streams() -> tuple[mx.Stream, mx.Stream, mx.Stream]:
    return mx.default_stream(mx.cpu), mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)


def ones(*shape: int) -> mx.array:
    """An evaluated input: ``mx.ones`` alone is a pending primitive too."""
    x = mx.ones(shape)
    mx.eval(x)
    return x


def wait_until_done(timeout: float = 10.0) -> None:
    """Poll the non-blocking pending count until every wrapped primitive has finished."""
    deadline = time.monotonic() + timeout
    while native.pending_count() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert native.pending_count() == 0


def run_both(build: Callable[[], Any]) -> tuple[native.PendingGraph, list[native.TimingRecord]]:
    """Evaluate ``build()`` plainly and instrumented; outputs must match bit for bit."""
    plain = [np.array(a) for a in flatten_arrays(build())]
    outs = flatten_arrays(build())
    wrapped = native.instrument(outs)
    graph = native.walk(outs)  # after instrument: ids are the same either way
    assert sum(graph.columns["wrapped"]) == wrapped > 0
    mx.eval(outs)
    wait_until_done()
    got = [np.array(a) for a in outs]
    assert [(x.dtype, x.shape, x.tobytes()) for x in got] == \
        [(x.dtype, x.shape, x.tobytes()) for x in plain]
    return graph, native.records()


def check_timeline(graph: native.PendingGraph, recs: list[native.TimingRecord]) -> None:
    nodes = {n.id: n for n in graph.nodes()}
    by_id = {r.id: r for r in recs}
    assert len(by_id) == len(recs), "one record per wrapped primitive"
    assert set(by_id) == {n.id for n in nodes.values() if n.wrapped}
    assert all(0 < r.start <= r.end and r.host_begin <= r.host_end for r in recs)

    threads: dict[int, set[int]] = {}
    for r in recs:
        assert r.stream == nodes[r.id].stream
        threads.setdefault(r.stream, set()).add(r.worker_tid)
    assert all(len(t) == 1 for t in threads.values()), "one worker thread per stream"
    workers = [next(iter(t)) for t in threads.values()]
    assert len(set(workers)) == len(workers), "each stream has its own thread"
    assert not set(workers) & {r.host_tid for r in recs}, "no stamp on the eval thread"

    for stream in threads:  # FIFO: a stream's primitives never overlap
        ordered = sorted((r for r in recs if r.stream == stream), key=lambda r: r.start)
        assert all(b.start >= a.end for a, b in itertools.pairwise(ordered))
    for r in recs:  # dependencies, on the same stream and across streams
        for producer, _ in nodes[r.id].inputs:
            if producer in by_id:
                assert r.start >= by_id[producer].end, (nodes[producer].name, nodes[r.id].name)


@needs_native
def test_docs_fun_on_two_cpu_streams(fun, streams) -> None:
    a, b = mx.random.uniform(shape=(1024, 512)), mx.random.uniform(shape=(512, 4))
    mx.eval(a, b)
    graph, recs = run_both(lambda: fun(a, b, streams[0], streams[1]))
    check_timeline(graph, recs)
    names = graph.names
    assert names.count("Exp") == 500 and names.count("Matmul") == 1
    assert len({r.stream for r in recs}) == 2


@needs_native
def test_mlp_value_and_grad_step() -> None:
    mx.random.seed(1)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    mx.eval(model.parameters())
    x, y = mx.random.normal((32, 64)), mx.random.randint(0, 10, (32,))

    def loss(m: nn.Module, x: mx.array, y: mx.array) -> mx.array:
        return nn.losses.cross_entropy(m(x), y, reduction="mean")

    step = nn.value_and_grad(model, loss)
    graph, recs = run_both(lambda: step(model, x, y))
    check_timeline(graph, recs)
    unwrapped = {n.name for n in graph.nodes() if not n.wrapped}
    assert unwrapped <= {"Copy", "StopGradient"}  # skipped on purpose, see graph.cpp


@needs_native
def test_thousand_op_chain_alternating_two_streams(streams) -> None:
    x0 = mx.random.normal((4096,))
    mx.eval(x0)

    def chain() -> mx.array:
        y = x0
        for i in range(1000):
            y = mx.sin(y, stream=streams[1 + i % 2])
            if i % 7 == 0:
                y = y * 1.0001
        return y

    graph, recs = run_both(chain)
    check_timeline(graph, recs)
    assert len(recs) == len(graph) > 1000


@needs_native
def test_random_and_dropout() -> None:
    def build() -> mx.array:
        mx.random.seed(3)
        k1, k2 = mx.random.split(mx.random.key(7))
        z = mx.random.normal((64, 64), key=k1) @ mx.random.uniform(shape=(64, 8), key=k2)
        drop = nn.Dropout(0.5)
        drop.train()
        return drop(mx.tanh(z)) + mx.random.normal((64, 8))

    graph, recs = run_both(build)
    check_timeline(graph, recs)
    assert "RandomBits" in graph.names


@needs_native
def test_compiled_function_is_one_wrapped_node() -> None:
    @mx.compile
    def gelu(x: mx.array) -> mx.array:
        return x * 0.5 * (1.0 + mx.erf(x / 1.41421356)) + mx.exp(-x * x)

    x = mx.random.normal((128, 64))
    mx.eval(x)
    graph, recs = run_both(lambda: gelu(x @ x.T).sum(axis=1))
    check_timeline(graph, recs)
    assert any(name.startswith("Compiled") for name in graph.names)


@needs_native
def test_instrument_inside_compile_is_refused_and_fusion_kept() -> None:
    wrapped: list[int] = []

    @mx.compile
    def f(x: mx.array) -> mx.array:
        y = mx.sin(x) * 2.0 + 1.0
        wrapped.append(native.instrument(y))  # y is a tracer here
        return y

    out = f(ones(16))
    assert wrapped == [0]
    assert [n for n in native.walk(out).names if n.startswith("Compiled")]
    mx.eval(out)


@needs_native
def test_donation_peak_memory_unchanged() -> None:
    def peak(instrumented: bool) -> int:
        x = mx.random.normal((1024 * 1024,))  # 4 MiB
        mx.eval(x)
        gc.collect()
        mx.clear_cache()
        base = mx.get_active_memory()
        mx.reset_peak_memory()
        y = mx.sin(x)
        del x  # the chain may now donate every buffer to the next op
        for _ in range(29):
            y = mx.sin(y)
        if instrumented:
            native.walk(y)
            assert native.instrument(y) == 30
        mx.eval(y)
        return mx.get_peak_memory() - base

    assert peak(True) == peak(False)


@needs_native
def test_ids_unique_after_the_graph_is_freed() -> None:
    x = ones(256)
    first = mx.exp(mx.sin(x))
    ids1 = native.walk(first).ids
    native.instrument(first)
    mx.eval(first)
    del first
    gc.collect()  # the descriptors and primitives are freed: their addresses may be reused
    second = mx.exp(mx.sin(x))
    ids2 = native.walk(second).ids
    native.instrument(second)
    mx.eval(second)
    wait_until_done()
    assert not set(ids1) & set(ids2)
    assert sorted(r.id for r in native.records()) == sorted(ids1 + ids2)


@needs_native
def test_walk_and_instrument_agree_on_ids_in_either_order() -> None:
    y = mx.cos(mx.sin(ones(8)))
    before = native.walk(y).ids
    native.instrument(y)
    assert native.walk(y).ids == before
    mx.eval(y)
    wait_until_done()
    assert [r.id for r in native.records()] == before


@needs_native
def test_exception_in_wrapped_primitive_leaves_no_record_and_propagates() -> None:
    # A stream made on another thread has no command encoder on this one: the
    # primitive's eval_cpu raises on the eval thread (mlx/backend/cpu/encoder.cpp).
    made: list[mx.Stream] = []
    t = threading.Thread(target=lambda: made.append(mx.new_stream(mx.cpu)))
    t.start()
    t.join()
    x = ones(16)

    def build() -> mx.array:
        return mx.exp(mx.sin(x), stream=made[0])  # Sin on this thread's default stream

    with pytest.raises(RuntimeError) as plain:
        mx.eval(build())
    y = build()
    sin_id = native.walk(y).ids[0]
    assert native.instrument(y) == 2
    with pytest.raises(RuntimeError) as wrapped:
        mx.eval(y)
    assert type(wrapped.value) is type(plain.value)
    assert str(wrapped.value) == str(plain.value)
    wait_until_done()
    assert [r.id for r in native.records()] == [sin_id]  # Exp raised and left nothing


@needs_native
def test_instrument_twice_and_after_scheduling() -> None:
    y = mx.sin(ones(8))
    assert native.instrument(y) == 1 and native.instrument(y) == 0
    mx.eval(y)
    assert native.instrument(y) == 0  # evaluated: nothing pending
    z = mx.cos(ones(1 << 16))
    mx.async_eval(z)
    assert native.instrument(z) == 0  # scheduled: not touched
    mx.eval(z)
    wait_until_done()
    assert len(native.records()) == 1


@needs_native
def test_dropped_graph_is_not_pending_forever() -> None:
    y = mx.exp(mx.sin(ones(8)))
    assert native.instrument(y) == 2 and native.pending_count() == 2
    del y
    gc.collect()
    assert native.pending_count() == 0 and native.records() == []


@needs_native
def test_progress_readable_during_async_eval_then_drained() -> None:
    y = ones(1 << 18)
    for _ in range(100):
        y = mx.sin(y)
    assert native.instrument(y) == 100
    mx.async_eval(y)
    pending, done = native.pending_count(), native.records()  # neither blocks
    assert 0 <= pending <= 100 and len(done) <= 100
    assert all(0 < r.start <= r.end for r in done)  # published only when complete
    mx.eval(y)
    wait_until_done()
    assert len(native.records(drain=True)) == 100
    assert native.records() == []


@needs_native
def test_clock_maps_onto_perf_counter() -> None:
    offset = native.clock_offset()
    assert offset.error_ns < 1_000_000
    y = mx.exp(mx.sin(ones(1 << 16)))
    native.instrument(y)
    before = time.perf_counter()
    mx.eval(y)
    wait_until_done()
    after = time.perf_counter()
    slack = offset.error_ns / 1e9
    for r in native.records():
        assert before - slack <= offset.to_perf_counter(r.start) <= after + slack
        assert before - slack <= offset.to_perf_counter(r.end) <= after + slack


@needs_native
@pytest.mark.parametrize("n", [50_000, 100_000])
def test_deep_chains_walk_without_recursion(n: int) -> None:
    y = ones(4)
    for _ in range(n):
        y = mx.sin(y)
    graph = native.walk(y)
    assert len(graph) == n
    assert graph.columns["in_node"][1:] == graph.ids[:-1]  # each Sin reads the one before


@needs_native
def test_walk_of_ten_thousand_primitives_is_fast() -> None:
    y = ones(4)
    for _ in range(10_000):
        y = mx.sin(y)
    native.walk(y)  # warm-up
    t = time.perf_counter()
    graph = native.walk(y)
    elapsed = time.perf_counter() - t
    t = time.perf_counter()
    nodes = graph.nodes()
    to_objects = time.perf_counter() - t
    print(f"walk of {len(graph)} primitives: {elapsed * 1e3:.1f} ms, "
          f"as objects: {to_objects * 1e3:.1f} ms")
    assert len(nodes) == 10_000 and elapsed < 1.0


@needs_native
def test_node_columns_describe_outputs_and_inputs() -> None:
    a = mx.random.normal((4, 4))
    mx.eval(a)
    q, r = mx.linalg.qr(a, stream=mx.cpu)
    s = (q + r.astype(mx.float16)).sum()
    qr, to_half, to_float, add, *_ = native.walk(s).nodes()  # post-order
    assert (qr.name, to_half.name, add.name) == ("QRF", "AsType", "Add")
    assert [o.shape for o in qr.outputs] == [(4, 4), (4, 4)]  # siblings: one node
    assert [(o.dtype, o.nbytes) for o in qr.outputs] == [("float32", 64), ("float32", 64)]
    assert qr.inputs == ((0, -1),)  # a is evaluated
    assert to_half.inputs == ((qr.id, 1),)  # r is QRF's second output
    assert (to_half.outputs[0].dtype, to_half.outputs[0].nbytes) == ("float16", 32)
    assert add.inputs == ((qr.id, 0), (to_float.id, 0))
    mx.eval(s)


def test_reports_unavailable_when_the_module_is_hidden(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "unimem_native", None)  # import now raises
    monkeypatch.setattr(native, "_loaded", None)
    assert native.available() is False
    reason = native.why_unavailable()
    assert reason and "not installed" in reason and "pure-Python" in reason
    with pytest.raises(native.NativeUnavailableError, match="not installed"):
        native.walk(mx.ones((2,)))


@needs_native
def test_refuses_a_different_mlx_version() -> None:
    # Both checks: the package's, before loading the binary, and the binary's own.
    script = (
        "import importlib.machinery, importlib.util, pathlib\n"
        "import mlx.core as mx\n"
        "mx.__version__ = '0.0.1'\n"
        "from unimem.capture import native\n"
        "print(native.why_unavailable())\n"
        "pkg = importlib.util.find_spec('unimem_native').submodule_search_locations[0]\n"
        "so = next(pathlib.Path(pkg).glob('_native*.so'))\n"
        "loader = importlib.machinery.ExtensionFileLoader('unimem_native._native', str(so))\n"
        "try:\n"
        "    loader.exec_module(loader.create_module(importlib.util.spec_from_loader(\n"
        "        'unimem_native._native', loader)))\n"
        "except ImportError as e:  # nanobind chains the module's own error\n"
        "    print(e.__cause__)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == 2, out
    for line in out:
        assert f"built against MLX {mx.__version__} but MLX 0.0.1 is installed" in line
        assert "pip install --no-build-isolation" in line
    assert "pure-Python" in out[0]
