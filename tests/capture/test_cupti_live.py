"""CUPTI on a real GPU: what a profile and a live watch record (skipped without one).

Run on MLX's CUDA build with cupti-python (the GPU machine); elsewhere every test here
skips with the reason ``cuda_kernels.why_unavailable()`` gives.
"""

from __future__ import annotations

import mlx.core as mx
import pytest

import unimem as um
from unimem.capture import cuda_kernels
from unimem.capture.gpu_kernels import COPIES_LANE, SYNC_LANE
from unimem.capture.native_ops import HOST_LANE
from unimem.model.graph import GPU_WAIT

pytestmark = pytest.mark.skipif(not cuda_kernels.available(),
                                reason=f"needs CUPTI: {cuda_kernels.why_unavailable()}")


def handoff(x):
    """The GPU makes y; the CPU reads it: MLX moves y where the CPU can read it."""
    mx.clear_cache()
    y = mx.exp(x, stream=mx.gpu)
    return mx.sum(y, stream=mx.cpu)


def test_a_hand_off_records_its_copy_its_migrations_and_the_waits():
    x = mx.random.uniform(shape=(4 << 20,))  # 16 MiB
    mx.eval(x)
    rec = um.profile(handoff, x, repeat=1)
    kinds = {op.activity for op in rec.ops}
    assert "kernel" in kinds and "sync" in kinds, rec.notes
    copies = [op for op in rec.ops_on(COPIES_LANE) if op.activity == "memcpy"]
    assert copies and max(op.nbytes for op in copies) >= x.nbytes
    migrated = [op for op in rec.ops if op.activity == "migration"]
    if not migrated:  # the driver gave no counters: the recording says why
        assert any("no migration counters" in n for n in rec.notes), rec.notes
    else:
        assert all(op.nbytes > 0 and op.end >= op.start for op in migrated)
    assert rec.ops_on(SYNC_LANE)
    moved = um.gpu_activity(rec)
    assert moved.copies >= 1
    # the host lane spans the run; stop's own synchronize is not drawn after it
    host = rec.ops_on(HOST_LANE)
    assert host[0].start == 0 and host[-1].name == "mx.eval"
    assert host[-1].end == pytest.approx(rec.wall)
    assert rec.makespan == pytest.approx(rec.wall)


def test_a_gpu_stream_waiting_for_another_is_a_gpu_wait_flow():
    """MLX orders two GPU streams with cudaStreamWaitEvent: the Exp on the second stream
    waits, on the GPU, for the GEMM on the first."""
    second = mx.new_stream(mx.gpu)
    a, b = mx.random.uniform(shape=(4096, 512)), mx.random.uniform(shape=(512, 4))
    mx.eval(a, b)
    rec = um.profile(lambda a, b: mx.exp(mx.matmul(a, b, stream=mx.gpu), stream=second), a, b,
                     repeat=1)
    waits = [(rec.ops[f.src], rec.ops[f.dst]) for f in rec.flows if f.kind == GPU_WAIT]
    assert any(src.name == "Matmul" and dst.name == "Exp" and src.end <= dst.start
               for src, dst in waits), [op.detail for op in rec.ops_on(SYNC_LANE)]


def test_a_watch_draws_kernels_while_the_block_runs_and_releases_cupti():
    a = mx.random.uniform(shape=(512, 512))
    mx.eval(a)
    with um.watch(display=False, memory=False) as w:
        assert w.mode == "native"
        for _ in range(3):
            b = a
            for _ in range(20):
                b = mx.exp(b * 0.5, stream=mx.gpu)
            mx.eval(b)
        w.refresh()  # what the UI timer does: kernels drawn before the block ends
        live = sum(op.activity == "kernel" for op in w.recording.ops)
        assert live >= 40
    kernels = [op for op in w.recording.ops if op.activity == "kernel"]
    assert len(kernels) >= 3 * 40  # Multiply and Exp, 20 each, 3 times
    assert all(op.start_measured and op.end >= op.start for op in kernels)
    (note,) = [n for n in w.recording.notes if n.startswith("GPU: ")]
    total, attributed = (int(note.split()[1]), int(note.split(", ")[1].split()[0]))
    assert attributed == total
    # the watched thread's phases, live: three evals, each after its walk; then the end
    phases = [op.name for op in w.recording.ops_on(HOST_LANE)]
    assert phases == ["your code", "unimem walk", "mx.eval"] * 3 + ["your code"]
    # nothing stays subscribed: CUPTI can be taken again at once
    rec = um.profile(lambda x: mx.exp(x, stream=mx.gpu), a, repeat=1)
    assert any(op.activity == "kernel" for op in rec.ops)
