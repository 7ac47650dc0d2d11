"""MemoryView's model payload: counters kept apart, registry rows, page strips, highlight."""

from __future__ import annotations

import gc

import mlx.core as mx
import numpy as np
import pytest

import unimem as um
from unimem.memory.registry import Registry
from unimem.model.memory import NOT_ON_HOST, Residency
from unimem.model.recording import Lane, MemorySample, Op, Recording
from unimem.views.memory import CLASSES, MemoryView, columns, downsample, strip


def _recording() -> Recording:
    rec = Recording("t", {}, "watch", "test")
    rec.lanes.append(Lane(0, "cpu", "cpu", 0))
    rec.ops += [Op(0, 0, "uniform", 0.0, end=0.1), Op(1, 0, "exp", 0.1, end=0.2, inputs=(0,))]
    rec.memory += [MemorySample(0.01 * i, 100 * i, 7, 100 * i + 50) for i in range(10)]
    return rec


def _counters(view: MemoryView) -> np.ndarray:
    return np.frombuffer(view.counters, dtype=np.float64).reshape(4, view.n_samples)


def test_counters_rows_and_strips():
    rec = _recording()
    reg = Registry(rec)
    x = mx.random.uniform(shape=(64 * 1024,))  # 256 KiB = 64 pages of 4 KiB
    y = mx.exp(x)
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.observe(1, [y])
    view = MemoryView(rec, reg, probe=True)
    _t, active, cache, peak = _counters(view)
    assert view.n_samples == 10
    assert list(active) == [100 * i for i in range(10)]  # three series, never merged
    assert set(cache) == {7} and list(peak) == [100 * i + 50 for i in range(10)]
    assert [r["name"] for r in view.rows] == ["op0", "op1"]
    row = view.rows[0]
    assert row["stream"] == "cpu" and row["state"] == "evaluated" and row["producer"] == 0
    assert row["pages"] >= 64 and row["buckets"] == row["pages"]  # under the bucket cap
    shares = np.frombuffer(view.strips, np.uint8).reshape(-1, len(CLASSES))
    assert len(shares) == sum(r["buckets"] for r in view.rows)
    if um.platform().backend == "cpu":
        assert (shares[:, CLASSES.index("host")] == 255).all()


def test_highlight_op_marks_arrays_produced_and_read():
    rec = _recording()
    reg = Registry(rec)
    x, y = mx.ones((4,)), mx.zeros((4,))
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.observe(1, [y])
    view = MemoryView(rec, reg, probe=False)
    view.highlight_op = 1  # exp made y from x
    assert view.highlight_rows == [0, 1]
    view.highlight_op = 0
    assert view.highlight_rows == [0]
    view.highlight_op = -1
    assert view.highlight_rows == []


def test_refresh_sees_new_samples_and_freed_arrays():
    rec = _recording()
    a = mx.ones((1024,))
    mx.eval(a)
    reg = um.track(a=a)
    view = MemoryView(rec, reg)
    rec.memory.append(MemorySample(1.0, 5, 5, 5000))
    del a
    gc.collect()
    view.refresh()
    assert view.n_samples == 11
    assert view.rows[0]["alive"] is False and view.rows[0]["state"] == "freed"
    assert view.rows[0]["pages"] == 0  # a freed array is not probed


def test_downsample_keeps_spikes():
    samples = [MemorySample(float(i), 10, 0, 10) for i in range(10_000)]
    samples[5_001] = MemorySample(5001.0, 999, 0, 999)
    data = downsample(columns(samples), max_points=100)
    assert data.shape == (4, 100) and data[1].max() == 999 and data[0][0] == 0.0


def test_strip_aggregates_pages_into_bucket_shares():
    pages = np.array([0] * 6 + [NOT_ON_HOST] * 2, dtype=np.int32)
    res = Residency((8,), "uint8", 8, 4096, pages, "cuda", True, 0.0)
    shares = strip(res, buckets=4)
    host, away = CLASSES.index("host"), CLASSES.index("not on host")
    assert shares[:, host].tolist() == [255, 255, 255, 0]
    assert shares[:, away].tolist() == [0, 0, 0, 255]
    shares = strip(res, buckets=2)
    assert shares[:, host].tolist() == [255, 128]


def test_repr_explains_each_counter():
    view = MemoryView(_recording(), None)
    text = repr(view)
    assert text.startswith("MemoryView (")
    for key in ("active", "cache", "peak"):
        assert f"  {key:<6} last" in text
    assert "0x" not in text
    assert view._repr_mimebundle_()[0]["text/plain"] == text


def test_bad_input():
    with pytest.raises(TypeError, match="Recording"):
        MemoryView(recording="rec")
    with pytest.raises(TypeError, match="Registry"):
        MemoryView(registry=[mx.ones((1,))])


def test_max_rows_shows_and_probes_only_the_latest_entries():
    reg = Registry()
    arrays = [mx.full((1024,), float(i)) for i in range(5)]
    mx.eval(arrays)
    for i, a in enumerate(arrays):
        reg.add(f"x{i}", a)
    view = MemoryView(None, reg, max_rows=2, probe=True)
    assert [r["name"] for r in view.rows] == ["x3", "x4"]
    assert "3 older entries not shown (max_rows=2)" in repr(view)
    assert "x0" not in repr(view).split("older entries")[1]
    with pytest.raises(ValueError, match="max_rows"):
        MemoryView(max_rows=0)


def test_outputs_of_ops_still_running_are_not_probed():
    rec = _recording()
    rec.ops[1].end = None  # exp is still in flight
    reg = Registry(rec)
    x, y = mx.ones((1024,)), mx.zeros((1024,))
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.observe(1, [y])
    view = MemoryView(rec, reg, probe=True)
    done, running = view.rows
    assert done["pages"] >= 1
    assert running["pages"] == 0 and running["residency"] == "not probed: allocated (in flight)"


def test_highlight_follows_a_linked_int_trait():
    import traitlets

    class Hover(traitlets.HasTraits):  # stands in for Timeline.hovered
        hovered = traitlets.Int(-1)

    rec = _recording()
    reg = Registry(rec)
    x = mx.ones((4,))
    mx.eval(x)
    reg.observe(0, [x])
    view = MemoryView(rec, reg, probe=False)
    hover = Hover()
    traitlets.dlink((hover, "hovered"), (view, "highlight_op"))
    hover.hovered = 0
    assert view.highlight_rows == [0]
    hover.hovered = -1
    assert view.highlight_rows == []


def test_a_registry_without_recording_gets_lanes_and_ends_from_the_view():
    rec = _recording()
    reg = um.track()  # what a user hands to um.watch(registry=...): no recording
    x = mx.ones((1024,))
    mx.eval(x)
    reg.observe(0, [x])  # watch passes op ids only
    assert reg["op0"].stream == "?" and reg["op0"].state == "allocated"
    view = MemoryView(rec, reg, probe=True)
    row = view.rows[0]
    assert (row["stream"], row["state"]) == ("cpu", "evaluated") and row["pages"] >= 1
    assert "op0   1024   float32  4.0 KiB  4.0 KiB  cpu     evaluated  0" in repr(view)


def _raise(*_args, **_kwargs):
    raise AssertionError("the view took a measurement")


def _no_probe(monkeypatch):
    """Any call to the probe, or for an array's address, now fails the test."""
    from unimem.memory import registry, residency

    for module, name in ((residency, "residencies"), (residency, "query"),
                         (residency, "np_view"), (registry, "residencies")):
        monkeypatch.setattr(module, name, _raise)


def test_a_snapshot_renders_without_the_probe(monkeypatch):
    rec = _recording()
    reg = Registry(rec)
    x, y = mx.ones((64 * 1024,)), mx.zeros((1024,))
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.add("y", y)
    probed, unprobed = reg.snapshot(probe=True), reg.snapshot(probe=False)
    _no_probe(monkeypatch)
    with pytest.raises(AssertionError, match="measurement"):  # the trap is set
        reg.snapshot(probe=True)
    view = MemoryView(rec, probed)
    assert view.registry is probed and [r["name"] for r in view.rows] == ["op0", "y"]
    assert view.probe and all(r["pages"] >= 1 for r in view.rows)
    assert len(np.frombuffer(view.strips, np.uint8)) == len(CLASSES) * sum(
        r["buckets"] for r in view.rows)
    assert "residency op0: " in repr(view)
    rec.memory.append(MemorySample(1.0, 5, 5, 5000))
    view.refresh()  # re-reads the recording; the snapshot is shown as it was
    assert view.n_samples == 11 and view.rows[0]["pages"] >= 1
    view = MemoryView(rec, unprobed)
    assert not view.probe and [r["pages"] for r in view.rows] == [0, 0]
    assert [r["residency"] for r in view.rows] == ["not probed"] * 2
    assert "  residency: not probed (on CUDA" in repr(view) and "op0   65536" in repr(view)
    with pytest.raises(ValueError, match="probe"):  # a snapshot was probed, or not, already
        MemoryView(rec, unprobed, probe=True)


def test_a_registry_is_asked_for_a_snapshot_at_each_refresh():
    from unimem.model.memory import RegistrySnapshot

    class Source:  # the contract: snapshot(recording, *, probe, last)
        def __init__(self):
            self.calls = []

        def snapshot(self, recording=None, *, probe=None, last=None):
            self.calls.append((recording, probe, last))
            return RegistrySnapshot((), {}, False, "metal")

    rec, source = _recording(), Source()
    view = MemoryView(rec, source, max_rows=7)
    view.refresh()
    assert source.calls == [(rec, None, 7)] * 2  # the registry decides what to probe
    assert repr(view).startswith("MemoryView (metal): 10 memory samples")
    MemoryView(rec, source, probe=False)
    assert source.calls[-1] == (rec, False, 200)


def test_backend_comes_from_what_the_view_is_handed():
    rec = _recording()
    assert repr(MemoryView(rec)).startswith("MemoryView (?):")  # nothing says
    assert repr(MemoryView(rec, backend="cuda")).startswith("MemoryView (cuda):")
    rec.platform["backend"] = "metal"  # the platform that made the recording
    view = MemoryView(rec)
    assert view.backend == "metal" and view.probe
    assert MemoryView(rec, um.track()).backend == um.platform().backend  # the registry's
