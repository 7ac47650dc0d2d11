"""A real 2-rank job (the ring backend on this machine), recorded and merged."""

from __future__ import annotations

from pathlib import Path

import pytest

import unimem as um
from unimem.analysis.merge import SEND_RECV, is_collective
from unimem.distributed import DistributedJobError
from unimem.model.graph import COLLECTIVE

JOB = Path(__file__).parent / "data" / "rank_job.py"


@pytest.mark.parametrize("sync", ["send/recv", "all_gather"])
def test_a_two_rank_job_merges_with_its_straggler_named(sync, monkeypatch):
    monkeypatch.setenv("SYNC", sync)
    m = um.launch(JOB, n=2, timeout=120)
    assert [r.rank for r in m.ranks] == [0, 1] and m.ranks[0].backend == "ring"
    assert m.ranks[0].sync == sync and f"({sync} stamps)" in repr(m)
    # both ranks read this host's one perf_counter clock, so the truth is known: the
    # mapped origin of rank 1 is its own origin, within the bound the merge states
    origin = m.ranks[1].origin_ns
    assert abs(m.clocks[1].to_ours(origin) - origin) <= m.clocks[1].bound_ns
    assert {lane.name for lane in m.recording.lanes} == {"rank 0 · cpu", "rank 1 · cpu"}
    # every all-reduce of every rank joined, in order, on one clock, and the message
    assert [c.kind for c in m.collectives] == ["Sum AllReduce"] * 4 + [SEND_RECV]
    assert m.collectives[-1].ranks == (0, 1) and m.collectives[-1].nbytes == 4096 * 4
    collective_ops = {op.id for op in m.recording.ops if is_collective(op.name)}
    assert collective_ops == {i for c in m.collectives for i in c.ops}
    flows = {(f.src, f.dst) for f in m.recording.flows if f.kind == COLLECTIVE}
    assert flows == {c.ops for c in m.collectives}
    assert m.bound < 0.01  # the clock error the merge states (ping-pongs on localhost)
    step2 = m.collectives[2]
    assert step2.last == 1  # rank 1 slept: everyone waited for it
    assert step2.waits[0] > 0.15 - 2 * m.bound
    made = {r: w for r, w, _ in m.stragglers()}
    assert made[1] > 0.15 and made[1] > made[0]
    assert all(a <= b + m.bound for a, b in zip(step2.arrivals, step2.ends))
    # the merged job's Chrome trace passes the loader's checks, a process per rank
    trace = m.recording.to_chrome_trace()
    back = um.Recording.load(trace)
    assert len(back.ops) == len(m.recording.ops) and back.flows == m.recording.flows
    assert {e["args"]["name"] for e in trace["traceEvents"]
            if e.get("name") == "process_name"} >= {"rank 0", "rank 1"}


def test_a_rank_that_fails_raises_with_the_jobs_output(monkeypatch):
    monkeypatch.setenv("FAIL", "1")  # the ranks inherit it
    with pytest.raises(DistributedJobError) as err:
        um.launch(JOB, n=2, timeout=120)
    message = str(err.value)
    assert "Rank 1 failed first" in message  # rank 0 lost its peer after that
    first = message.split("Rank 1 failed first")[1].split("The job's output")[0]
    assert "RuntimeError: rank 1 failed on purpose" in first  # that rank's own traceback


def test_watch_rank_outside_a_job_says_how_to_start_one():
    with pytest.raises(DistributedJobError, match="mlx.launch"), um.watch_rank():
        pass
