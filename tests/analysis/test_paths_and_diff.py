"""Critical path, waits and diff on recordings whose answers are known by construction."""

import pytest
from factory import make_recording

import unimem as um
from unimem.model.recording import Recording


def diamond() -> Recording:
    # cpu:   a [0,1]          c [3,4] (reads b)   e in flight
    # cpu:1  b [0,3]  d [3,3.5]
    return make_recording([(0, "a", 0, 1, ()), (1, "b", 0, 3, ()), (0, "c", 3, 4, (1,)),
                           (1, "d", 3, 3.5, ()), (0, "e", 4, None, (2,))])


def test_critical_path_follows_the_cross_stream_wait():
    cp = um.critical_path(diamond())
    assert cp.ops == (1, 2)  # b on cpu:1 held c on cpu; a finished early and is off the path
    assert cp.lanes == ("cpu:1", "cpu")
    (w,) = cp.waits
    assert (w.src, w.dst, w.waiter, w.on) == (1, 2, "cpu", "cpu:1")
    assert w.seconds == pytest.approx(2.0)  # ready at 1 (after a), b ended at 3
    assert cp.length == pytest.approx(4.0)
    assert repr(cp) == ("Critical path: 2 ops over 2 lanes, 4.00 s\n"
                        "  cpu:1: b\n"
                        "  cpu: c\n"
                        "  wait: cpu waited 2.00 s for cpu:1 (op 1 -> op 2)")


def test_critical_path_through_stream_order_only():
    # one lane, three ops back to back, plus a short independent op elsewhere
    rec = make_recording([(0, "x", 0, 1, ()), (0, "y", 1, 2, ()), (1, "z", 0, 0.5, ()),
                          (0, "w", 2, 5, ())])
    cp = um.critical_path(rec)
    assert cp.ops == (0, 1, 3) and cp.waits == ()
    assert "3 ops over 1 lane," in repr(cp)


def test_measured_starts_set_stream_order_not_list_order():
    """A native recording lists ops in graph-walk order; its stream ran them in the
    order of their measured starts, and the path follows that order."""
    rec = make_recording([(0, "late", 2, 3, ()), (0, "early", 0, 1, ()), (0, "middle", 1, 2, ())],
                         start_measured=True)
    cp = um.critical_path(rec)
    assert cp.names == ("early", "middle", "late") and cp.ops == (1, 2, 0)


def test_long_chains_are_summarised_and_empty_is_said():
    rec = make_recording([(0, f"op{i}", i, i + 1, ()) for i in range(6)])
    assert "op0, op1, op2, … (6 ops)" in repr(um.critical_path(rec))
    assert repr(um.critical_path(make_recording([(0, "x", 0, None, ())]))) == \
        "Critical path: empty (no finished ops)"


def test_waits_per_lane():
    w = um.waits(diamond())
    assert w.seconds("cpu", "cpu:1") == pytest.approx(2.0)
    assert w.seconds("cpu:1") == 0.0
    assert repr(w).splitlines()[1] == "  cpu waited 2.00 s on cpu:1 (1 time)"
    # a producer that had already ended costs no wait
    done_early = make_recording([(1, "b", 0, 1, ()), (0, "a", 0, 2, ()), (0, "c", 2, 3, (0,))])
    assert repr(um.waits(done_early)) == "Waits: no lane waited on another"


def test_diff_counts_and_times_per_kind_and_stream():
    a = make_recording([(0, (("exp", 4),), 0, 2, ()), (1, "matmul", 0, 1, ())])
    b = make_recording([(0, (("exp", 2), ("sin", 2)), 0, 1, ()), (0, "matmul", 1, 4, ())])
    d = um.diff(a, b, labels=("split", "one"))
    exp = d.row("exp", "cpu")
    assert exp.counts == (4, 2) and exp.times == pytest.approx((2.0, 0.5))
    assert d.row("sin", "cpu").counts == (0, 2)
    assert d.row("matmul", "cpu:1").counts == (1, 0)
    assert d.row("matmul", "cpu").times == pytest.approx((0.0, 3.0))
    text = repr(d)
    assert text.splitlines()[0] == "Diff of split vs one per op kind and stream"
    assert "split calls" in text and "split evenly per call" in text and "0x" not in text
    # only the cells fed by the mixed segment are marked derived
    assert exp.derived == (False, True) and d.row("matmul", "cpu").derived == (False, False)
    (exp_line,) = [x for x in text.splitlines() if x.strip().startswith("exp")]
    assert exp_line.count(" *") == 1 and exp_line.rstrip().endswith("*")
    assert repr(um.diff(a, a)).count("note") == 0


def test_diff_counts_a_primitive_once_and_times_all_its_kernels():
    """A GEMM and its split-K reduction: two kernel bars of one Matmul call."""
    a = make_recording([(0, "matmul", 0, 2, ()), (0, (("matmul", 0),), 2, 3, ())])
    b = make_recording([(0, "matmul", 0, 1, ())])
    row = um.diff(a, b).row("matmul", "cpu")
    assert row.counts == (1, 1) and row.times == pytest.approx((3.0, 1.0))


def test_diff_rejects_bad_input():
    with pytest.raises(ValueError, match="at least two"):
        um.diff(diamond())
    with pytest.raises(TypeError, match="Recording objects"):
        um.diff(diamond(), "x")
    with pytest.raises(ValueError, match="labels"):
        um.diff(diamond(), diamond(), labels=("only one",))


def test_on_a_real_profile(fun, ab):
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, trace=False)
    cp = um.critical_path(p)
    assert cp.ops and cp.ops[-1] == max(p.ops, key=lambda o: o.end).id
    ends = [p.ops[i].end for i in cp.ops]
    assert ends == sorted(ends)
    assert "exp" in repr(um.diff(p, p)).lower()


def test_critical_path_highlights_on_the_timeline():
    rec = diamond()
    tl = um.Timeline(rec)
    tl.highlight(um.critical_path(rec).ops)
    assert "2 ops highlighted" in repr(tl)
