"""One start rule: the live, incremental derivation ends where the batch one does."""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections import deque

import mlx.core as mx
import pytest
from factory import make_recording

import unimem as um
from unimem.model.recording import Recording
from unimem.model.timing import LiveStarts, derive_starts, start_of


def replay_live(finished: Recording, seed: int) -> list[float | None]:
    """The starts LiveStarts gives when ``finished`` is replayed as a watch sees it: ops
    appear in hand-off order without an end, ends arrive later in each lane's order,
    lanes interleaved at random, and the starts are updated after every event."""
    rnd = random.Random(seed)
    live = Recording("replay", {}, "watch", "replayed", list(finished.lanes))
    starts = LiveStarts(live)
    waiting: dict[int, deque[int]] = {}
    ends = {op.id: op.end for op in finished.ops}

    def arrive() -> None:
        lane = rnd.choice([k for k, q in waiting.items() if q])
        i = waiting[lane].popleft()
        live.ops[i].end = ends[i]
        starts.update()

    for op in finished.ops:
        live.ops.append(dataclasses.replace(
            op, end=None, start=op.start if op.start_measured else None))
        waiting.setdefault(op.lane, deque()).append(op.id)
        starts.update()
        while any(waiting.values()) and rnd.random() < 0.6:
            arrive()
    while any(waiting.values()):
        arrive()
    assert starts.settled == len(live.ops)
    return [op.start for op in live.ops]


def batch(rec: Recording) -> Recording:
    done = copy.deepcopy(rec)
    derive_starts(done)
    return done


def synthetic() -> Recording:
    """Three lanes, cross-lane reads, late waiter stamps to tighten, a measured start,
    an op that starts before the previous end on its lane would allow (its hand-off)."""
    return make_recording([
        (0, "a", None, 5.0),
        (1, "b", None, 3.0, (0,)),  # a's waiter was late: a ends at 3 at the latest
        (0, "c", None, 4.0),
        (2, "d", None, 2.0),
        {"lane": 1, "calls": (("e", 2), ("f", 1)), "submit": 3.5, "end": 6.0,
         "inputs": (2, 3)},
        {"lane": 2, "calls": "g", "submit": 2.5, "start": 2.5, "end": 2.75,
         "start_measured": True},
        {"lane": 0, "calls": "h", "submit": 7.0, "end": 8.0, "inputs": (4, 5)},
    ], lanes=("cpu", "cpu:1", "gpu"))


def _chain(x, s1, s2):
    for i in range(30):
        x = mx.sin(x, stream=s1 if i % 3 else s2)
        if i % 7 == 0:
            x = x @ mx.ones((64, 64), stream=s2)
    return x


def test_start_of_takes_the_latest_bound_but_never_passes_the_end():
    rec = synthetic()
    ops = rec.ops
    assert start_of(ops[0], ops, None) == 0.0  # its hand-off
    assert start_of(ops[2], ops, 5.0) == 4.0  # lane free at 5, but it ended at 4
    assert start_of(ops[4], ops, 3.0) == 4.0  # c (op 2) ended at 4, after the lane was free
    ops[4].end = None
    assert start_of(ops[4], ops, 1.0) == 4.0  # in flight: no end to cap it


def test_synthetic_recording_live_equals_batch():
    done = batch(synthetic())
    assert done.ops[0].end == 3.0  # tightened by its reader
    assert [op.start for op in done.ops] == [0.0, 3.0, 3.0, 0.0, 4.0, 2.5, 7.0]
    for seed in range(20):
        assert replay_live(done, seed) == [op.start for op in done.ops]


@pytest.mark.parametrize("mode", ["segment", "op", "exclusive"])
def test_profiled_recording_live_equals_batch(mode):
    x = mx.random.uniform(shape=(64, 64))
    rec = um.profile(_chain, x, s1="cpu", s2="cpu:1", repeat=1, warmup=0, trace=False,
                     mode=mode)
    assert len(rec.ops) > 2 and rec.flows
    assert [op.start for op in batch(rec).ops] == [op.start for op in rec.ops]  # idempotent
    for seed in range(3):
        assert replay_live(rec, seed) == [op.start for op in rec.ops]


def test_a_watch_ends_with_the_batch_starts():
    """Closing tightens ends the live derivation had already used: the last refresh must
    start over from them, or an op queued after a late stamp keeps a start taken from it."""
    x, w8 = mx.random.uniform(shape=(256, 256)), mx.random.uniform(shape=(256, 256)) / 256
    mx.eval(x, w8)
    s2 = mx.new_stream(mx.cpu)
    with um.watch(mode="segment", display=False, memory=False) as w:
        p = mx.sin(x, stream=mx.cpu)
        mx.eval(p)
        rec = w.recording
        deadline = time.monotonic() + 10
        while any(op.end is None for op in rec.ops):  # the waiters stamp just after eval
            assert time.monotonic() < deadline, "a waiter never stamped its op"
            time.sleep(1e-3)
        late = rec.ops[-1]
        late.end += 1.0  # a waiter that woke a second late
        w.refresh()  # live starts settle on that stamp
        r = mx.exp(p, stream=s2)  # a quick reader on another stream
        n = p
        for _ in range(40):  # and a slow op queued after p on its own stream
            n = mx.matmul(n, w8, stream=mx.cpu)
        mx.eval(r, n)
    after = next(op for op in rec.ops[late.id + 1:] if op.lane == late.lane)
    assert late.end < after.end  # tightened at close by the quick reader
    assert [op.start for op in rec.ops] == [op.start for op in batch(rec).ops]
