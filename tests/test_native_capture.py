"""profile and trace on a user's own code, through the native probe (or its fallback).

The native probe walks what MLX is about to evaluate and times every CPU
primitive on its stream's worker: random ops, backward passes built in C++,
compiled functions and functions that evaluate inside themselves all trace and
profile, each primitive on the stream MLX gave it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import pairwise

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from mlx import nn

import unimem as um
from unimem.capture import cuda_kernels, native, native_run

needs_native = pytest.mark.skipif(
    not native.available(), reason=f"native probe not available: {native.why_unavailable()}")


@pytest.fixture(autouse=True)
def _on_the_cpu() -> Iterator[None]:
    """The native probe times CPU streams; where MLX has a GPU, its default device is
    the GPU, so these tests make their unplaced arrays on the CPU's default stream."""
    with mx.stream(mx.cpu):
        yield


def _train_step():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    model.train()
    opt = optim.SGD(learning_rate=0.1)
    mx.eval(model.parameters())
    loss_and_grad = nn.value_and_grad(
        model, lambda m, x, y: nn.losses.cross_entropy(m(x), y).mean())

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss, model.parameters()

    x, y = mx.random.normal((8, 16)), mx.random.randint(0, 4, (8,))
    mx.eval(x, y)
    return step, x, y


@needs_native
def test_a_train_step_with_dropout_traces_and_profiles_on_one_stream():
    step, x, y = _train_step()
    with mx.stream(mx.cpu):
        g = um.trace(step, x, y)
        p = um.profile(step, x, y, repeat=2, warmup=1)
    assert g.count("RandomBits") >= 1  # dropout's mask: random work traces
    assert g.count() > 20 and {n.lane for n in g.primitives} == {"cpu"}
    assert p.mode == "native" and [lane.name for lane in p.lanes] == ["cpu"]
    assert p.flows == []  # one stream: no cross-stream dependency
    assert all(op.start_measured and op.start <= op.end for op in p.ops)
    # backward primitives, built in C++, are bars of their own
    assert sum(p.calls_by_lane()["cpu"].values()) == len(p.ops) > 20


@needs_native
def test_a_function_that_evaluates_inside_itself():
    def f(x, s):
        y = mx.exp(x, stream=s)
        if y.sum().item() > 0:  # an implicit eval inside the function
            y = y * 2
        mx.eval(y)
        return mx.sin(y, stream=s)

    x = mx.ones((16,))
    g = um.trace(f, x, s="cpu:1")
    assert g.count("Exp", "cpu:1") == 1 and g.count("Sin", "cpu:1") == 1
    assert any("evaluated 2 times inside itself" in n for n in g.notes)
    p = um.profile(f, x, s="cpu:1", repeat=2)
    assert {op.name for op in p.ops} >= {"Exp", "Sin", "Multiply"}


@needs_native
def test_a_run_says_what_the_evaluating_thread_did_phase_by_phase():
    """The host's phases, back to back from the run's start to its end: its own Python,
    unimem's walk before each eval (the two evals inside the function, then the
    outputs'), and MLX's eval."""
    from unimem.capture.call import bind

    def f(x):
        y = mx.exp(x)
        y.sum().item()
        mx.eval(y)
        return mx.sin(y)

    captured = native_run.run(bind(f, (mx.ones((16,)),), {}))
    host = captured.host
    assert [p.kind for p in host] == ["python", "walk", "eval"] * 3
    assert host[0].start == captured.t0
    assert all(a.end == b.start for a, b in pairwise(host))  # nothing unaccounted
    assert host[-1].end - captured.t0 == pytest.approx(captured.wall)
    assert all(p.start <= p.end for p in host)


@needs_native
def test_a_watch_draws_the_watched_threads_phases_as_they_close(monkeypatch):
    """A watch's host lane (drawn by default where CUPTI traces the GPU; asked for here on
    the CPU): the block's own code, unimem's walk and each eval, back to back from the
    block's first line to its last, then the block's code after its last eval."""
    from unimem import watcher
    from unimem.capture.native_ops import HOST_LANE

    class WithHostLane(watcher.NativeRecorder):
        def __init__(self, recording, *, gpu=False):
            super().__init__(recording, gpu=gpu, host=True)

    monkeypatch.setattr(watcher, "NativeRecorder", WithHostLane)
    x = mx.ones((32,))
    with um.watch(display=False, memory=False) as w:
        mx.eval(mx.exp(x))
        mx.sin(x).sum().item()
        y = mx.cos(x)  # built after the last eval: the block's code, not evaluated
    host = w.recording.ops_on(HOST_LANE)
    assert [op.name for op in host] == ["your code", "unimem walk", "mx.eval"] * 2 + [
        "your code"]
    assert all(a.end == b.start for a, b in pairwise(host))  # nothing unaccounted
    assert host[-1].end - host[0].start <= w.recording.wall
    assert all(op.start_measured and op.activity == "host" for op in host)
    assert w.recording.count() == len([op for op in w.recording.ops
                                       if op.activity != "host"])  # no MLX calls
    del y
    monkeypatch.undo()
    with um.watch(display=False, memory=False) as default:  # drawn where CUPTI traces
        mx.eval(mx.exp(x))
    drawn = HOST_LANE in [lane.name for lane in default.recording.lanes]
    assert drawn == cuda_kernels.available()


@needs_native
def test_a_compiled_function_is_one_timed_primitive():
    compiled = mx.compile(lambda a: mx.sin(a) * 2 + 1)

    def f(a):
        return mx.exp(compiled(a))

    a = mx.ones((64,))
    with mx.stream(mx.cpu):
        p = um.profile(f, a, repeat=2)
    names = [op.name for op in p.ops]
    assert any(n.startswith("Compiled") for n in names) and "Exp" in names


@needs_native
def test_the_traced_graph_is_what_mlx_evaluates():
    def chain(x, s1, s2):
        for i in range(200):
            x = mx.sin(x, stream=s1 if i % 2 else s2)
        return x

    x = mx.ones((8,))
    mx.eval(x)  # else its own pending primitives (Full, Broadcast) are walked too
    g = um.trace(chain, x, s1="cpu", s2="cpu:1")
    p = um.profile(chain, x, s1="cpu", s2="cpu:1", repeat=1, warmup=0)
    assert g.count("Sin") == 200 == len(p.ops)  # every walked primitive was timed
    assert len(g.cross_stream_edges) == 199 == len(p.flows)
    assert {op.name for op in p.ops} == {"Sin"}


@needs_native
def test_each_timed_op_names_the_graph_node_it_measured(fun, ab):
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, mode="native")
    assert p.graph is not None and p.ops
    for op in p.ops:
        node = p.graph.nodes[op.node]
        assert (node.name, node.lane) == (op.name, p.lanes[op.lane].name)
    assert len({op.node for op in p.ops}) == len(p.ops)  # one op per CPU primitive


def test_fifty_thousand_primitives_trace_without_a_crash():
    def chain(x):
        for _ in range(50_000):
            x = mx.sin(x, stream=mx.cpu)
        return x

    g = um.trace(chain, mx.ones((4,)))
    assert g.count("Sin") == 50_000


def test_without_the_probe_unimem_falls_back_and_says_so(monkeypatch, fun, ab):
    monkeypatch.setattr(native, "_loaded", native._Loaded(None, "unimem_native hidden by a test"))
    assert not native.available()
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1)
    assert p.mode == "segment"
    assert p.graph is not None and any("hidden by a test" in n for n in p.graph.notes)
    with pytest.raises(native.NativeUnavailableError, match="hidden by a test"):
        um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, mode="native")


@needs_native
def test_a_run_with_gpu_primitives_is_recorded_with_segments_and_says_so(monkeypatch, fun, ab):
    """The native probe times CPU streams. Where a run had GPU primitives and CUPTI cannot
    trace their kernels (faked here: this machine may have no GPU), the recording comes
    from the segment method
    and its first note says why and that the call ran twice."""
    monkeypatch.setattr(native_run, "gpu_primitives", lambda captured: 3)
    monkeypatch.setattr(cuda_kernels, "available", lambda: False)  # no CUPTI either
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1)
    assert p.mode == "segment" and p.count("exp", lane="cpu:1") == 500
    assert p.notes[0].startswith("method: segment, not native: 3 primitives ran on a GPU")
    assert "then again with segment" in p.notes[0]


@pytest.mark.skipif(os.environ.get("UNIMEM_REQUIRE_NATIVE") != "1",
                    reason="UNIMEM_REQUIRE_NATIVE=1 is set where the build tools are installed (CI)")
def test_the_native_module_was_built_where_it_must_be():
    assert native.available(), native.why_unavailable()


def test_the_platform_card_says_which_capture_method_runs_and_why(monkeypatch):
    card = repr(um.about())
    if native.available():
        assert "capture" in card and "native probe built" in card
    monkeypatch.setattr(native, "_loaded", native._Loaded(None, "unimem_native hidden by a test"))
    card = repr(um.about())
    assert "native probe absent: unimem_native hidden by a test" in card
    assert "pure-Python capture" in card  # and what runs instead


@needs_native
def test_gpu_method_says_how_gpu_streams_are_recorded(monkeypatch):
    """"" without a GPU; on one, "cupti" where kernels can be traced, else "segment", and
    the platform card says the same in words."""
    from types import SimpleNamespace

    from unimem import devices

    real = devices.platform()
    if not real.has_gpu:
        assert um.gpu_method() == "" and "GPU streams" not in um.about().capture
    monkeypatch.setattr(devices, "platform", lambda: SimpleNamespace(has_gpu=True))
    monkeypatch.setattr(cuda_kernels, "available", lambda: True)
    assert um.gpu_method() == "cupti" and "timed on the device by CUPTI" in um.about().capture
    monkeypatch.setattr(cuda_kernels, "available", lambda: False)
    monkeypatch.setattr(cuda_kernels, "why_unavailable", lambda: "no CUPTI in this test")
    assert um.gpu_method() == "segment"
    assert "the hand-off method (no CUPTI in this test)" in um.about().capture


@needs_native
def test_in_place_updates_and_module_arguments_profile_like_any_code():
    """Valid code behaves as without unimem: in-place updates of an op's output, and an
    mlx.nn.Module passed as an argument (the hand-off capture saw a dict there)."""
    def bump(x):
        b = mx.exp(x)
        b += 1
        b[0] = 3.0
        b[1:3] += 1
        return b

    x = mx.ones((8,))
    mx.eval(x)
    p = um.profile(bump, x, repeat=1)
    assert p.mode == "native" and p.count("exp") == 1
    assert um.trace(bump, x).count("Exp") == 1
    with um.watch(display=False, memory=False):  # the same values while observed
        watched = bump(x)
        mx.eval(watched)
    assert watched.tolist() == bump(x).tolist()
    model = nn.Linear(4, 4)
    mx.eval(model.parameters())
    xx = mx.ones((2, 4))
    p = um.profile(lambda m, v: m(v), model, xx, repeat=1)
    assert p.mode == "native" and p.count() >= 1
    assert um.trace(lambda m, v: m(v), model, xx).count("AddMM") == 1


@pytest.mark.parametrize("mode", ["segment", "op"])
def test_in_place_updates_under_a_hand_off_watch(mode):
    """The hand-off recorder (what watch runs where the native probe cannot time a stream,
    e.g. MLX's GPU streams) keeps the user's values when every output of a segment is
    updated in place: such a segment's outputs are all read again by its own later calls."""
    def bump(x):
        b = mx.exp(x)
        b += 1
        b[0] = 3.0
        b[1:3] += 1
        return b

    x = mx.ones((8,))
    mx.eval(x)
    with um.watch(mode=mode, display=False, memory=False) as w:
        watched = bump(x)
        mx.eval(watched)
    assert watched.tolist() == bump(x).tolist()
    assert w.recording.count("exp") >= 1
