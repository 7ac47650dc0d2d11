"""Recording's own rules: counting calls, adding ops with their flows."""

import pytest
from factory import lane, make_recording

from unimem.model.recording import Op


def test_count_matches_primitive_and_call_names_alike() -> None:
    rec = make_recording([(0, "Matmul", 0.0, 1.0), (1, (("Exp", 3),), 0.0, 1.0),
                          (1, (("exp", 2), ("add", 1)), 1.0, 2.0)])
    assert rec.count("exp") == rec.count("EXP") == 5
    assert rec.count("exp", lane="cpu:1") == 5 and rec.count("exp", lane="cpu") == 0
    assert rec.count("matmul", lane="cpu") == 1
    assert rec.count() == 7 and rec.count(lane="cpu:1") == 6
    assert rec.count("sin") == 0 and rec.count(lane="gpu") == 0


def test_add_op_records_a_flow_per_input_from_another_lane() -> None:
    rec = make_recording([(0, "exp", 0.0, 1.0, ()), (0, "sin", 1.0, 2.0, (0,))],
                         lanes=("cpu", "cpu:1", lane(2, "gpu")), nbytes=64)
    rec.add_op(Op(2, 1, "add", 0.0, inputs=(0, 1), nbytes=8))
    rec.add_op(Op(3, 2, "mul", 0.0, inputs=(2,), nbytes=8))
    assert [(f.src, f.dst, f.kind, f.nbytes) for f in rec.flows] == [
        (0, 2, "cross stream", 64), (1, 2, "cross stream", 64), (2, 3, "device switch", 8)]
    with pytest.raises(ValueError, match="added at position 4"):
        rec.add_op(Op(7, 0, "exp", 0.0))


def test_summary_counts_read_right_in_the_singular() -> None:
    one = make_recording([(0, (("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1)), 0.0, 1.0)])
    text = repr(one)
    assert "ends measured for 1 of 1 op," in text and ", 1 more kind\n" in text
    two = make_recording([(0, "a", 0.0, 1.0), (0, "b", 1.0, 2.0)])
    assert "ends measured for 2 of 2 ops," in repr(two)
