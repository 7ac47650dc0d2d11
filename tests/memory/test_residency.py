"""The page probe on host memory, its errors, and the zero-copy proofs."""

from __future__ import annotations

import mmap
import sys

import mlx.core as mx
import numpy as np
import pytest

import unimem as um
from unimem.memory import residency as _residency
from unimem.memory.residency import query_pages
from unimem.model.memory import NOT_ON_HOST, NOT_PROBED, runs_of

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="move_pages is Linux")
cpu_build = pytest.mark.skipif(um.platform().backend != "cpu", reason="CPU build semantics")


@linux
@cpu_build
def test_every_page_of_an_evaluated_cpu_array_is_on_a_host_node():
    a = mx.random.uniform(shape=(1 << 20,), stream=mx.cpu)  # 4 MiB, written by the CPU
    mx.eval(a)
    r = um.residency(a, name="a")
    assert r.probed and r.backend == "cpu"
    assert len(r.pages) >= (4 << 20) // r.page_size
    assert (r.pages >= 0).all() and r.on_host == 1.0
    assert sum(x.count for x in r.runs) == len(r.pages)
    assert sum(r.counts.values()) == len(r.pages)
    text = repr(r)
    assert text.startswith("Residency of a: float32 1048576, 4.0 MiB:")
    assert "query only: no page moved" in text and "0x" not in text


@linux
def test_untouched_memory_is_reported_not_on_host():
    region = mmap.mmap(-1, 64 * 4096)  # fresh anonymous pages, never touched
    fresh = np.frombuffer(region, dtype=np.uint8)
    lo, hi = _residency.host_span(fresh)
    codes, _, why = query_pages(lo, hi)
    assert why == "" and len(codes) == 64
    assert (codes == NOT_ON_HOST).all()  # the kernel has no page for them yet
    fresh[:32 * 4096] = 1  # touch the first half
    codes = query_pages(lo, hi)[0]
    assert (codes[:32] >= 0).all() and (codes[32:] == NOT_ON_HOST).all()
    del fresh
    region.close()


def test_runs_are_run_lengths():
    pages = np.array([0, 0, -2, -2, -2, 0, -14], dtype=np.int32)
    assert [(r.code, r.start, r.count) for r in runs_of(pages)] == [
        (0, 0, 2), (-2, 2, 3), (0, 5, 1), (-14, 6, 1)]
    assert runs_of(np.zeros(0, np.int32)) == []


def test_views_and_bfloat16_are_probed_over_their_own_bytes():
    base = mx.ones((64, 1024))  # 256 KiB
    half = base[:32]
    b16 = mx.ones((2048,), dtype=mx.bfloat16)
    mx.eval(half, b16)
    assert um.residency(half).nbytes == 128 * 1024
    assert um.residency(half).pages.size in (32, 33)  # 128 KiB, maybe unaligned
    assert um.residency(b16).dtype == "bfloat16"


def test_bad_input_gives_clear_errors_and_never_evaluates():
    with pytest.raises(TypeError, match="needs an mx.array"):
        um.residency(np.ones(3))
    lazy = mx.exp(mx.ones((8,)))
    with pytest.raises(ValueError, match="not been evaluated"):
        um.residency(lazy)
    with pytest.raises(ValueError):  # still lazy: the probe did not evaluate it
        mx.get_array_buffer_size(lazy)


def test_platform_without_move_pages_says_so(monkeypatch):
    monkeypatch.setattr(_residency, "_SYSCALL", None)
    monkeypatch.setattr(_residency, "_WHY_NOT", "move_pages(2) is Linux-only; this is darwin")
    a = mx.ones((4096,))
    mx.eval(a)
    r = um.residency(a)
    assert not r.probed and (r.pages == NOT_PROBED).all()
    assert "not probed: move_pages(2) is Linux-only" in repr(r)


def test_shares_memory_proves_views_and_copies():
    a = mx.arange(1000, dtype=mx.float32)
    mx.eval(a)
    assert um.shares_memory(np.asarray(a), a)
    assert not um.shares_memory(np.array(a), a)
    assert um.shares_memory(memoryview(a), a)
    with pytest.raises(TypeError, match="NumPy array"):
        um.shares_memory([1.0], a)
    with pytest.raises(ValueError, match="not been evaluated"):
        um.shares_memory(np.zeros(3), mx.exp(a))


def test_zero_copy_report_on_this_platform():
    rep = um.zero_copy_report(nbytes=64 * 1024, repeat=2)
    verdicts = {r.expr: r.verdict for r in rep.rows}
    assert verdicts["np.array(a)"] == "copies"
    assert verdicts["np.asarray(a)"] == "zero-copy"
    assert verdicts["memoryview(a)"] == "zero-copy"
    if rep.backend != "metal":  # MLX adopts NumPy memory only with Metal
        assert verdicts["mx.array(x)"] == "copies"
    asarray = next(r for r in rep.rows if r.expr == "np.asarray(a)")
    assert asarray.writes_visible is True
    text = repr(rep)
    assert "np.asarray(a)" in text and "np.shares_memory True" in text
    with pytest.raises(ValueError, match="nbytes"):
        um.zero_copy_report(nbytes=0)
