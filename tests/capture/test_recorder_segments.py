"""Segment mode (the default): how calls are grouped before MLX sees them."""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

import unimem as um

ROOT = Path(__file__).resolve().parents[2]


def _interleaved(x, s1, s2):
    a, b = x, x
    for _ in range(100):
        a = mx.sin(a, stream=s1)  # two independent chains, calls alternating
        b = mx.cos(b, stream=s2)
    return a, b


def _alternating(x, s1, s2):
    for i in range(20):
        x = mx.sin(x, stream=s1 if i % 2 == 0 else s2)
    return x


def test_independent_chains_keep_full_segments_despite_switching():
    x = mx.ones((16,))
    p = um.profile(_interleaved, x, s1="cpu", s2="cpu:1", repeat=1, trace=False, mode="segment")
    for lane in ("cpu", "cpu:1"):
        counts = [op.count for op in p.ops_on(lane)]
        assert sum(counts) == 100 and len(counts) <= 3  # not one segment per switch
    assert p.flows == []


def test_a_reader_on_another_stream_cuts_the_producer_segment_first():
    x = mx.ones((16,))
    p = um.profile(_alternating, x, s1="cpu", s2="cpu:1", repeat=1, trace=False, mode="segment")
    assert all(op.count == 1 for op in p.ops)  # every op reads the other stream
    assert len(p.flows) == 19 and all(f.kind == "cross stream" for f in p.flows)
    # a reader's end bounds its producer's (waiter stamps are late by their wake-up)
    assert all(p.ops[f.src].end <= p.ops[f.dst].end for f in p.flows)


def test_a_quiet_stream_is_not_held_back_to_the_end(fun, ab):
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, trace=False, mode="segment")
    (matmul,) = p.ops_on("cpu")
    first_exps = p.ops_on("cpu:1")[0]
    assert matmul.submit <= first_exps.submit + 1e-3  # handed off with the first full segment
    assert [x.name for x in p.lanes][:2] == ["cpu", "cpu:1"]


def test_summary_says_what_was_measured_and_what_derived(fun, ab):
    text = repr(um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, trace=False, mode="segment"))
    assert "  times: ends measured for 11 of 11 ops, starts derived for 11" in text
    text = repr(um.profile(fun, *ab, d1="cpu", d2="cpu", repeat=1, trace=False,
                           mode="exclusive"))
    assert "starts measured for 501" in text and "derived" not in text.split("times:")[1]


def test_segments_let_mlx_donate_buffers_like_a_plain_run():
    def chain(x, s):
        for _ in range(30):
            x = mx.sin(x, stream=s)
        return x

    x = mx.random.uniform(shape=(1 << 20,))  # 4 MiB
    mx.eval(x)
    p = um.profile(chain, x, s="cpu", repeat=1, trace=False, mode="segment")
    base = min(s.active for s in p.memory)
    assert max(s.peak for s in p.memory) - base <= 8 << 20  # not 30 × 4 MiB
    op = um.profile(chain, x, s="cpu", repeat=1, trace=False, mode="op")
    assert max(s.peak for s in op.memory) - base >= 60 << 20  # the distortion op mode has


def test_late_waiter_stamps_are_tightened_by_readers():
    from unimem.model.recording import Lane, Op, Recording
    from unimem.model.timing import derive_starts

    rec = Recording("t", {}, "segment", "by hand")
    rec.lanes = [Lane(0, "cpu", "cpu", 0), Lane(1, "cpu:1", "cpu", 1)]
    # producer stamped at 5 by a slow waiter, its reader on another lane at 3,
    # the next op on the producer's lane at 4
    rec.ops = [Op(0, 0, "p", 0.0, end=5.0), Op(1, 1, "r", 0.0, end=3.0, inputs=(0,)),
               Op(2, 0, "q", 0.0, end=4.0)]
    derive_starts(rec)
    assert rec.ops[0].end == 3.0  # cannot have ended after its reader
    assert rec.ops[1].start == 3.0 and rec.ops[2].start == 3.0


@pytest.mark.skipif(not mx.is_available(mx.gpu), reason="needs MLX's GPU (the CUDA hang)")
@pytest.mark.parametrize("mode", ["op", "segment"])
def test_alternating_gpu_cpu_chain_finishes(mode):
    """gpu -> cpu -> gpu with one async_eval each hangs MLX's CUDA build; the recorder
    waits on the host for the CPU input first. In a subprocess: a hang must fail, not stall."""
    code = (
        "import mlx.core as mx, unimem as um\n"
        "def chain(x, s1, s2):\n"
        "    for i in range(40):\n"
        "        x = mx.sin(x, stream=s1 if i % 2 == 0 else s2)\n"
        "    return x\n"
        f"r = um.profile(chain, mx.ones((64, 64)), s1='gpu', s2='cpu', repeat=1, mode='{mode}')\n"
        "print(len(r.ops), all(op.end is not None for op in r.ops))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "True"
