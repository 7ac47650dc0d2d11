"""Closing a widget frees it: nothing it showed (recordings, payloads, parts) stays alive."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import ipywidgets as w
import mlx.core as mx
import traitlets
from factory import make_recording

import unimem as um
from unimem import Timeline
from unimem.model.recording import Recording
from unimem.views.memory import MemoryView

N = 200


def chain(n: int = 200) -> Recording:
    return make_recording(
        ({"lane": i % 2, "calls": "Exp", "submit": i * 1e-3, "start": i * 1e-3,
          "end": (i + 1) * 1e-3, "inputs": (i - 1,) if i else ()} for i in range(n)),
        title="chain", mode="op", method="measured: test", nbytes=16,
        memory=[((i + 1) * 1e-3, 16 * i, 0, 16 * i) for i in range(n)])


def make_and_close(count: int, refs: list[weakref.ref[Recording]]) -> None:
    """``count`` Timelines; every tenth also a MemoryView linked to it by hover."""
    for i in range(count):
        rec = chain()
        refs.append(weakref.ref(rec))
        tl = Timeline(rec)
        if i % 10 == 0:
            view = MemoryView(rec)
            traitlets.dlink((tl, "hovered"), (view, "highlight_op"))
            view.close()
        tl.close()


def test_closed_timelines_and_memory_views_are_freed():
    make_and_close(20, [])  # first-use caches (interned trait names, imports)
    gc.collect()
    before = len(w.widgets.widget._instances)
    refs: list[weakref.ref[Recording]] = []
    tracemalloc.start()
    try:
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        make_and_close(N, refs)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert [r for r in refs if r() is not None] == []
    assert len(w.widgets.widget._instances) == before  # no Layout left registered
    # each recording alone is ~200 KiB traced; a widget held after close() (or its
    # Layout, ~3.6 KiB) would pass this bound many times over
    assert grown < 200 * 1024, f"{N} closed widgets left {grown / 1024:.0f} KiB behind"


def test_closed_timeline_lets_go_of_its_data():
    tl = Timeline(chain())
    tl.close()
    assert tl.recordings == [] and tl._payload == b"" and tl.layout.comm is None
    assert repr(tl) == "Timeline: closed"
    tl.refresh()  # harmless


def test_layout_given_is_not_closed():
    shared = w.Layout(width="100px")
    tl = Timeline(chain(4), layout=shared)
    tl.close()
    assert shared.comm is not None
    shared.close()


def test_closed_explore_frees_its_children_and_recordings(fun, ab):
    a, b = ab

    def make() -> um.Explore:
        return um.explore(fun, a, b, d1="cpu", d2=mx.cpu, repeat=1, warmup=0, mode="op")

    make().close()
    gc.collect()
    before = len(w.widgets.widget._instances)
    refs = []
    for _ in range(5):
        e = make()
        first = e.latest
        second = e.run(d2="cpu:1")
        refs += [weakref.ref(first), weakref.ref(second), weakref.ref(e)]
        parts = [e.timeline, e.button, e.table, *e.controls.values()]
        e.close()
        assert all(p.comm is None for p in parts)
        del e, parts, first, second
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    assert len(w.widgets.widget._instances) == before
