"""The registry holds arrays weakly: it never keeps memory alive or blocks donation."""

from __future__ import annotations

import gc
import html

import mlx.core as mx
import numpy as np
import pytest
from factory import make_recording

import unimem as um
from unimem.memory.registry import Registry
from unimem.model.memory import ALLOCATED, EVALUATED, FREED, LAZY
from unimem.model.text import PRE_STYLE

MIB = 2**20


def _pointer(a: mx.array) -> int:
    return np.asarray(a).ctypes.data


def test_deleted_array_is_freed_and_entry_says_so():
    a = mx.random.uniform(shape=(MIB,))  # 4 MiB
    mx.eval(a)
    reg = um.track(a=a)
    assert reg["a"].alive and reg["a"].state == ALLOCATED
    before = mx.get_active_memory()
    del a
    gc.collect()
    assert before - mx.get_active_memory() >= 4 * MIB  # the registry kept nothing alive
    entry = reg["a"]
    assert (entry.alive, entry.state) == (False, FREED)
    assert entry.shape == (MIB,) and entry.nbytes == 4 * MIB  # still says what it was
    assert entry.buffer_bytes == 4 * MIB
    assert reg.get("a") is None


def test_registry_does_not_block_donation():
    cpu = mx.default_stream(mx.cpu)  # buffer reuse as MLX's CPU backend does it
    a = mx.random.uniform(shape=(MIB,), stream=cpu)
    mx.eval(a)
    address = _pointer(a)
    reg = um.track(a=a)
    b = mx.exp(a, stream=cpu)
    del a  # b's Exp may now reuse a's buffer: only possible if nobody else holds it
    mx.eval(b)
    assert _pointer(b) == address
    assert not reg["a"].alive


def test_state_lazy_then_allocated_and_views_deduplicated():
    big = mx.ones((256, 1024))
    lazy = mx.exp(big)
    mx.eval(big)
    view = big[:1]
    mx.eval(view)
    reg = um.track(big, lazy=lazy, view=view)
    assert reg["a0"].state == ALLOCATED
    assert reg["lazy"].state == LAZY and reg["lazy"].buffer_bytes is None
    # a view's buffer is its base's: the whole 1 MiB, while its own nbytes are 4 KiB
    assert reg["view"].nbytes == 4096 and reg["view"].buffer_bytes == MIB
    with pytest.raises(ValueError):  # reading its state evaluated nothing
        mx.get_array_buffer_size(lazy)


def test_observe_names_stream_and_state_from_recording():
    rec = make_recording([(0, "exp", None, 0.5), (1, "sin", None, None, (0,))],
                         mode="watch", method="test")
    reg = Registry(rec)
    x, y = mx.ones((4,)), mx.zeros((4,))
    mx.eval(x, y)
    reg.observe(0, [x])
    reg.observe(1, (x, y))
    assert reg.names() == ["op0", "op1.0", "op1.1"]
    assert reg["op0"].stream == "cpu" and reg["op0"].state == EVALUATED  # op 0 has an end
    assert reg["op1.1"].stream == "cpu:1" and reg["op1.1"].state == ALLOCATED  # still running
    assert reg.produced_by([1]) == ["op1.0", "op1.1"]


def test_limit_drops_freed_entries_first_down_to_90_percent():
    reg = Registry(limit=10)
    keep = mx.ones((2,))
    reg.add("keep", keep)
    for i in range(9):
        reg.add(f"gone{i}", mx.ones((2,)))  # the only reference is the registry's weak one
    gc.collect()
    reg.add("new", keep)  # 11 entries: drop 2, the oldest freed ones
    assert reg.names() == ["keep"] + [f"gone{i}" for i in range(2, 9)] + ["new"]
    assert reg.dropped == 2
    assert "2 older entries dropped (limit 10)" in repr(reg)
    for i in range(10):  # all live now: the oldest live ones go
        reg.add(f"live{i}", keep)
    assert len(reg) <= 10 and "live9" in reg


def test_repr_is_a_deterministic_table():
    x = mx.ones((3, 5))
    mx.eval(x)
    reg = um.track(x=x)
    text = repr(reg)
    assert text.splitlines()[0] == "Registry: 1 array (1 alive)"
    assert "x     3×5    float32  60 B" in text
    assert "0x" not in text
    assert reg._repr_html_() == (f"<pre class='unimem-registry' style='{PRE_STYLE}'>"
                                  f"{html.escape(text)}</pre>")


def test_bad_input():
    with pytest.raises(TypeError, match="mx.array"):
        um.track(x=[1, 2])
    with pytest.raises(TypeError, match="name"):
        Registry().add("", mx.ones((1,)))
    with pytest.raises(ValueError, match="limit"):
        Registry(limit=0)
    with pytest.raises(KeyError, match="no array named"):
        Registry()["missing"]


def test_snapshot_probes_only_arrays_that_are_done():
    rec = make_recording([(0, "exp", None, 0.5), (1, "sin", None, None, (0,))],
                         mode="watch", method="test")  # op 0 has an end, op 1 is in flight
    reg = Registry(rec)
    x, y, z = mx.ones((1024,)), mx.zeros((1024,)), mx.full((1024,), 2.0)
    mx.eval(x, y, z)
    lazy = mx.exp(x)
    gone = mx.ones((4,))
    mx.eval(gone)
    reg.observe(0, [x])
    reg.observe(1, [y])
    reg.add("by_hand", z)  # no producer: nothing to wait for
    reg.add("lazy", lazy)
    reg.add("gone", gone)
    del gone
    gc.collect()
    snap = reg.snapshot(probe=True)
    assert [e.name for e in snap.entries] == ["op0", "op1", "by_hand", "lazy", "gone"]
    assert [e.state for e in snap.entries] == [EVALUATED, ALLOCATED, ALLOCATED, LAZY, FREED]
    assert list(snap.residency) == ["op0", "by_hand"]  # in flight, lazy and freed: skipped
    assert all(len(r.pages) >= 1 and r.name == n for n, r in snap.residency.items())
    assert snap.probed and snap.backend == um.platform().backend
    with pytest.raises(ValueError):  # still lazy: the snapshot evaluated nothing
        mx.get_array_buffer_size(lazy)
    assert list(reg.snapshot(probe=True, last=3).residency) == ["by_hand"]
    off = reg.snapshot(probe=False)
    assert not off.probed and off.residency == {} and off.entries == snap.entries
    assert reg.snapshot().probed == (um.platform().backend != "cuda")  # the default
    with pytest.raises(ValueError, match="last"):
        reg.snapshot(last=0)


def test_snapshot_is_plain_data_that_reads_like_the_registry():
    reg = Registry(limit=2)
    keep = [mx.ones((3, 5)) for _ in range(3)]
    mx.eval(keep)
    for i, a in enumerate(keep):
        reg.add(f"x{i}", a)
    snap = reg.snapshot(probe=False)
    assert (snap.dropped, snap.limit) == (1, 2)
    assert repr(snap) == repr(reg) and snap.table() == reg.table()
    assert snap._repr_html_() == reg._repr_html_()
    del keep, a
    gc.collect()
    assert all(e.alive for e in snap.entries)  # what was read then; the registry moves on
    assert not any(e.alive for e in reg.snapshot(probe=False).entries)
