"""um.watch: live recording of arbitrary MLX code (data side; widgets are optional)."""

import gc
import threading

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from mlx import nn

import unimem as um
from unimem.capture import native
from unimem.capture.streams import gpu_available, resolve
from unimem.model.recording import Lane, Op, Recording
from unimem.model.timing import LiveStarts


@pytest.fixture(autouse=True)
def _cpu_default():
    """These tests are about watch's mechanics: ops without a stream go to the CPU
    on every build (on CUDA the default device is the GPU)."""
    before = mx.default_device()
    mx.set_default_device(mx.cpu)
    yield
    mx.set_default_device(before)


def _no_interception() -> bool:
    return "observed" not in repr(mx.exp) and mx.eval.__name__ == "eval"


def test_ops_recorded_per_stream_with_ends():
    s1 = resolve("cpu:1")
    a = mx.ones((64, 64))
    with um.watch(mode="segment", display=False, memory=False) as w:
        x = mx.matmul(a, a, stream=mx.cpu)
        y = a
        for _ in range(30):
            y = mx.exp(y, stream=s1)
        z = mx.add(x, y, stream=mx.cpu)  # reads cpu:1's result: a cross-stream edge
        mx.eval(z)
    rec = w.recording
    calls = rec.calls_by_lane()
    assert calls["cpu"]["matmul"] == 1 and calls["cpu"]["add"] == 1
    assert calls["cpu:1"]["exp"] == 30
    assert rec.mode == "watch" and "measured live" in rec.method
    assert all(op.end is not None and op.start is not None and op.start <= op.end
               for op in rec.ops)
    assert [f.kind for f in rec.flows if f.kind != "untracked"] == ["cross stream"]
    assert "untracked" in calls  # `a` came from before the block: unimem cannot see it made
    assert w.state == "stopped" and _no_interception()
    assert repr(w).startswith("Watch (stopped, segment mode): 33 MLX calls on 3 lanes")


def test_eval_inside_the_block_hands_off_pending_work_first():
    with um.watch(mode="segment", display=False, memory=False, segment_budget=60.0) as w:
        b = mx.exp(mx.ones((32,), stream=mx.cpu), stream=mx.cpu)
        assert w.recording.ops == []  # still pending: the segment is not full
        mx.eval(b)  # the patched eval flushes before MLX computes
        assert len(w.recording.ops) == 1
        assert b[0].item() > 0
    assert w.recording.ops[0].name == "ones ×1 + exp ×1"  # one segment: both calls


def test_200_step_loop_keeps_memory_and_maps_flat():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = optim.SGD(learning_rate=0.01)
    mx.eval(model.parameters())
    loss_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.cross_entropy(
        m(x), y).mean())
    x, y = mx.random.normal((8, 16)), mx.random.randint(0, 4, (8,))
    mx.eval(x, y)
    marks = {}
    with um.watch(mode="segment", display=False, memory=True, memory_hz=20) as w:
        for step in range(200):
            loss, grads = loss_and_grad(model, x, y)
            opt.update(model, grads)
            mx.eval(loss, model.parameters())
            if step in (20, 199):
                gc.collect()
                marks[step] = (mx.get_active_memory(), w._recorder.tracked_arrays)
    (m20, t20), (m199, t199) = marks[20], marks[199]
    assert m199 <= m20 + 64 * 1024  # no arrays kept alive by watching
    assert t199 <= t20 + 50  # the recorder's maps follow live arrays, not steps
    rec = w.recording
    assert len(rec.ops) > 200  # every step recorded, none dropped
    assert sum(op.count for op in rec.ops if rec.lanes[op.lane].name != "untracked") >= 200
    assert rec.memory and all(op.end is not None for op in rec.ops)


def test_keyboard_interrupt_stops_cleanly_and_keeps_the_recording():
    threads = threading.active_count()
    a = mx.ones((128, 128))
    with pytest.raises(KeyboardInterrupt), um.watch(mode="segment", display=False) as w:
        for step in range(1000):
            a = mx.tanh(mx.matmul(a, a, stream=mx.cpu), stream=mx.cpu)
            if step == 40:
                raise KeyboardInterrupt  # as Ctrl-C would, mid-loop
    rec = w.recording
    assert w.state == "interrupted"
    timed = [op for op in rec.ops if rec.lanes[op.lane].name != "untracked"]
    assert sum(op.count for op in timed) == 82  # every call before the interrupt
    assert all(op.end is not None for op in rec.ops)  # handed off and drained
    assert any("interrupted" in n for n in rec.notes)
    assert _no_interception() and threading.active_count() == threads
    mx.eval(a)  # MLX still usable
    with um.watch(display=False, memory=False):  # and a new watch can start
        mx.eval(mx.exp(a))


def test_other_errors_propagate_and_are_noted():
    with pytest.raises(ZeroDivisionError), um.watch(mode="segment", display=False, memory=False) as w:
        mx.eval(mx.exp(mx.ones(4)))
        raise ZeroDivisionError("from inside the block")
    assert w.state == "failed" and any("ZeroDivisionError" in n for n in w.recording.notes)
    assert _no_interception()


def test_registry_is_told_what_each_op_made():
    seen = []

    class FakeRegistry:  # the contract: observe(op_id, outputs)
        def observe(self, op_id, outputs):
            seen.append((op_id, len(outputs)))

    with um.watch(display=False, memory=False, registry=FakeRegistry()) as w:
        mx.eval(mx.exp(mx.ones(4), stream=mx.cpu))
    assert seen == [(op.id, op.count) for op in w.recording.ops]  # ones + exp: 2 outputs
    assert seen == [(0, 2)]


def test_in_flight_ops_have_no_end_and_live_starts_follow():
    rec = Recording("live", {}, "watch", "built by hand")
    rec.lanes = [Lane(0, "cpu", "cpu", 0), Lane(1, "cpu:1", "cpu", 1)]
    rec.ops = [Op(0, 0, "a", 0.0, end=1.0), Op(1, 1, "b", 0.5, inputs=(0,)),
               Op(2, 1, "c", 0.6)]
    live = LiveStarts(rec)
    live.update()
    assert rec.ops[0].start == 0.0
    assert rec.ops[1].start == 1.0 and rec.ops[1].end is None  # waits for a, in flight
    assert rec.ops[2].start == 1.0  # queued behind b on its lane
    rec.ops[1].end = 2.0
    rec.ops[2].end = 2.5
    live.update()
    assert rec.ops[2].start == 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="watch mode must be 'auto' or one of"):
        um.watch(mode="exclusive")
    with pytest.raises(ValueError, match="window"):
        um.watch(window=0)
    with pytest.raises(ValueError, match="ui_hz"):
        um.watch(ui_hz=0)
    with pytest.raises(TypeError, match="Registry"):
        um.watch(registry=object())
    w = um.watch(display=False, memory=False)
    with w:
        pass
    with pytest.raises(RuntimeError, match="runs once"), w:
        pass


def test_views_refresh_on_a_timer_never_per_op():
    import time

    class CountingView:
        def __init__(self):
            self.refreshes = 0

        def refresh(self):
            self.refreshes += 1

    view = CountingView()  # any object with refresh() is a view a Watch can redraw
    w = um.Watch(display=False, memory=False, ui_hz=20, views={"counting": lambda w: view})
    assert w.view("counting") is view  # made on first use
    a = mx.ones((64,))
    t0 = time.perf_counter()
    with w:
        for _ in range(60):
            a = mx.sin(mx.exp(a, stream=mx.cpu), stream=mx.cpu)
            mx.eval(a)
            time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    ops = len(w.recording.ops)
    assert ops >= 60
    assert 1 <= view.refreshes <= elapsed * 20 + 2  # at most ui_hz a second, plus the last
    assert view.refreshes < ops


def test_watch_makes_the_views_it_is_given_on_first_use():
    bare = um.Watch(display=False, memory=True)  # um.watch gives the default views
    assert bare.memory_view is None
    with pytest.raises(KeyError, match="no view 'timeline'"):
        bare.view("timeline")
    w = um.watch(display=False, registry=um.track())
    assert w._views == {}  # nothing drawn until asked
    view = w.memory_view
    assert isinstance(view, um.MemoryView) and w.memory_view is view
    assert view.backend == um.platform().backend  # a live recording is made here
    assert um.watch(display=False, memory=False).memory_view is None


def test_live_timeline_draws_in_flight_ops_open_and_keeps_every_op():
    w = um.watch(display=False, memory=True, window=5)
    a = mx.random.uniform(shape=(384, 384))
    mx.eval(a)
    with w:
        assert isinstance(w.timeline, um.Timeline)
        assert isinstance(w.memory_view, um.MemoryView)
        for _ in range(8):
            b = mx.exp(a, stream=mx.cpu)
            mx.eval(b)
        for _ in range(40):  # ~40 matmuls: still running right after the hand-off
            a = mx.tanh(a @ a, stream=mx.cpu)
        mx.async_eval(a)
        w.refresh()
        flying = [op for op in w.recording.ops if op.end is None]
        assert all(op.start is not None for op in flying)  # drawn from a lower bound
        if any(op.end is None for op in w.recording.ops[-5:]):  # in flight in the window:
            # the usual case (on a CUDA build CUPTI's finished sync calls may come last)
            assert "in flight" in repr(w.timeline)
    assert all(op.end is not None for op in w.recording.ops)
    assert len(w.recording.ops) > 5  # the recording keeps everything ...
    n = len(w.recording.ops)
    assert f"showing last 5 of {n} ops" in repr(w.timeline)  # ... the view shows the window


@pytest.mark.skipif(not native.available() or gpu_available(),
                    reason="native live recording needs the probe and a machine without a GPU")
def test_a_native_watch_of_a_training_loop_has_one_lane_and_no_cross_stream_dependency():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))
    mx.eval(model.parameters())
    opt = optim.SGD(learning_rate=0.1)
    loss_and_grad = nn.value_and_grad(
        model, lambda m, x, y: nn.losses.cross_entropy(m(x), y).mean())
    x, y = mx.random.normal((8, 16)), mx.random.randint(0, 4, (8,))
    mx.eval(x, y)
    with um.watch(display=False, memory=False) as w:
        for _ in range(3):
            loss, grads = loss_and_grad(model, x, y)
            opt.update(model, grads)
            mx.eval(loss, model.parameters())
            loss.item()
    rec = w.recording
    assert w.mode == "native" and [lane.name for lane in rec.lanes] == ["cpu"]
    assert rec.flows == []  # one stream: nothing is called cross-stream
    assert len(rec.ops) > 3 * 20  # the backward pass's primitives are bars of their own
    assert all(op.start_measured and op.start <= op.end for op in rec.ops)
    assert "Watch (stopped, native mode)" in repr(w)


def test_native_watch_refuses_a_registry():
    if not native.available():
        pytest.skip(f"native probe not available: {native.why_unavailable()}")
    with pytest.raises(ValueError, match="registry needs the arrays"):
        um.watch(mode="native", registry=um.track())
    assert um.watch(display=False, registry=um.track()).mode == "segment"  # auto picks it


def test_auto_watch_falls_back_to_segment_without_the_probe_or_with_an_untimed_gpu(
        monkeypatch):
    """native only where it can record everything: the probe built, and no GPU or one
    whose kernels CUPTI can trace; otherwise the hand-off method, named in the mode."""
    from unimem import watcher

    monkeypatch.setattr(native, "_loaded", native._Loaded(None, "hidden by a test"))
    assert um.watch(display=False).mode == "segment"
    with pytest.raises(native.NativeUnavailableError, match="hidden by a test"):
        um.watch(mode="native", display=False)
    monkeypatch.undo()
    monkeypatch.setattr(watcher, "gpu_available", lambda: True)
    monkeypatch.setattr(watcher.cuda_kernels, "available", lambda: False)
    assert um.watch(display=False).mode == "segment"
    if native.available():  # a GPU with CUPTI: its kernels are timed, so native it is
        monkeypatch.setattr(watcher.cuda_kernels, "available", lambda: True)
        assert um.watch(display=False).mode == "native"
