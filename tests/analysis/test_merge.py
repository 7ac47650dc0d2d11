"""Merging ranks: one clock, collectives joined, the straggler named."""

from __future__ import annotations

import pytest

import unimem as um
from unimem.analysis.merge import merge
from unimem.model.graph import COLLECTIVE
from unimem.model.ranks import Exchange, RankInfo
from unimem.model.recording import Lane, Op, Recording

SKEW = [0, 5_000_000_000, -3_000_000_000]  # each rank's clock minus rank 0's, ns


def rank_recording(rank: int, size: int, late: float) -> Recording:
    """Three steps: compute 10 ms (plus ``late`` in step 1), then an all-reduce that ends
    when the last rank arrives. Times on the rank's own clock."""
    rec = Recording(f"rank {rank}", {}, "watch", "by hand")
    rec.lanes.append(Lane(0, "cpu", "cpu", 0))
    arrivals = []
    for step in range(3):
        t = step * 0.1
        work = 0.010 + (late if step == 1 else 0.0)
        arrivals.append((t, work))
    for step, (t, work) in enumerate(arrivals):
        rec.add_op(Op(len(rec.ops), 0, "Multiply", t, start=t, end=t + work,
                      start_measured=True))
        done = t + 0.010 + (0.05 if step == 1 else 0.0) + 0.001  # when the last arrived
        rec.add_op(Op(len(rec.ops), 0, "Sum AllReduce", t + work, start=t + work, end=done,
                      nbytes=4096, start_measured=True))
    origin = 1_000_000_000 + SKEW[rank]
    ex = ()
    if rank + 1 < size:
        nxt = SKEW[rank + 1] - SKEW[rank]
        ex = (Exchange(rank + 1, 100, 150 + nxt, 160 + nxt, 210),
              Exchange(rank + 1, 900_000_100, 900_000_150 + nxt, 900_000_160 + nxt,
                       900_000_210, "end"))
    rec.rank = RankInfo(rank, size, f"host{rank}", "ring", origin, ex)
    return rec


@pytest.fixture
def job():
    # rank 2 computes 50 ms longer in step 1: the straggler
    return [rank_recording(r, 3, 0.05 if r == 2 else 0.0) for r in (2, 0, 1)]


def test_ranks_go_on_rank_zeros_clock_and_collectives_join(job):
    m = merge(job)
    assert m.size == 3 and [r.rank for r in m.ranks] == [0, 1, 2]
    assert [lane.name for lane in m.recording.lanes] == ["rank 0 · cpu", "rank 1 · cpu",
                                                        "rank 2 · cpu"]
    # same origin in true time on every rank: after mapping, step 0's work starts together
    starts = [m.recording.ops[i].start for i in (0, 6, 12)]
    assert max(starts) - min(starts) < 1e-6
    assert len(m.collectives) == 3 and {c.kind for c in m.collectives} == {"Sum AllReduce"}
    flows = [f for f in m.recording.flows if f.kind == COLLECTIVE]
    assert len(flows) == 3 * 2  # each collective joins rank 0-1 and 1-2
    assert m.bound < 1e-6


def test_the_straggler_is_named_and_its_cost_counted(job):
    m = merge(job)
    step1 = m.collectives[1]
    assert step1.last == 2
    assert step1.waits[0] == pytest.approx(0.05) and step1.waits[1] == pytest.approx(0.05)
    table = {r: (made, last) for r, made, last in m.stragglers()}
    assert table[2][0] == pytest.approx(0.10, abs=1e-6)  # 2 ranks × 50 ms
    assert m.waited()[2] == pytest.approx(0.0, abs=1e-9)
    lines = repr(m).splitlines()
    assert lines[0] == "Merged job: 3 ranks (ring), 3 collectives joined across ranks"


def test_merged_recordings_save_load_and_merge_from_files(job, tmp_path):
    paths = []
    for rec in job:
        assert rec.rank is not None
        p = tmp_path / f"rank{rec.rank.rank}.json"
        rec.to_chrome_trace(str(p))
        assert um.Recording.load(str(p)).rank == rec.rank  # the rank survives the file
        paths.append(p)
    m = merge(paths)
    assert m.collectives[1].last == 2 and m.stragglers()[2][2] >= 1
    out = tmp_path / "merged.json"
    trace = m.recording.to_chrome_trace(str(out))
    processes = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
                 if e.get("name") == "process_name"}
    assert {"rank 0", "rank 1", "rank 2"} <= set(processes.values())  # a process per rank
    back = um.Recording.load(str(out))
    assert [f.kind for f in back.flows].count(COLLECTIVE) == 6


def test_what_cannot_be_merged_says_why(job):
    with pytest.raises(ValueError, match="carry no rank"):
        merge([Recording("x", {}, "watch", "by hand")])
    with pytest.raises(ValueError, match="every rank once"):
        merge(job[:2])
    with pytest.raises(ValueError, match="got none"):
        merge([])


def p2p_recording(rank: int, size: int, ops: list[tuple[str, float, float]]) -> Recording:
    """One lane of (name, start, end) on a clock shared with the other ranks."""
    rec = Recording(f"rank {rank}", {}, "watch", "by hand")
    rec.lanes.append(Lane(0, "cpu", "cpu", 0))
    for name, start, end in ops:
        rec.add_op(Op(len(rec.ops), 0, name, start, start=start, end=end, nbytes=64,
                      start_measured=True))
    ex = tuple(Exchange(rank + 1, 100, 150, 160, 210, w) for w in ("start", "end")
               if rank + 1 < size)
    rec.rank = RankInfo(rank, size, "h", "ring", 0, ex)
    return rec


def test_a_send_joins_its_recv_and_only_the_receiver_waits():
    # rank 1 sends 30 ms after rank 0 began to receive; then rank 0 sends a small message
    # that the socket takes at once, 10 ms before rank 1 comes to receive it
    m = merge([p2p_recording(0, 2, [("Recv", 0.010, 0.041), ("Send", 0.050, 0.0501)]),
               p2p_recording(1, 2, [("Send", 0.040, 0.041), ("Recv", 0.060, 0.0601)])])
    late, early = m.collectives
    assert (late.kind, late.ranks, late.last) == ("Send → Recv", (1, 0), 1)
    assert late.waits == pytest.approx((0.0, 0.030))  # rank 0 waited for rank 1's send
    assert early.ranks == (0, 1) and early.waits == (0.0, 0.0)  # nobody waited
    assert m.stragglers() == [(0, 0.0, 0), (1, pytest.approx(0.030), 1)]
    flows = [(f.src, f.dst) for f in m.recording.flows if f.kind == COLLECTIVE]
    assert sorted(flows) == sorted([late.ops, early.ops])


def test_messages_among_more_than_two_ranks_are_not_guessed_at():
    m = merge([p2p_recording(r, 3, [("Send" if r == 0 else "Recv", 0.01, 0.02)])
               for r in range(3)])
    assert m.collectives == []
    assert any("do not say which of the 3 ranks" in n for n in m.notes)
