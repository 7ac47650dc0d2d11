"""Recording.count: one way to count calls whichever method named them."""

from factory import make_recording


def test_count_matches_primitive_and_call_names_alike() -> None:
    rec = make_recording([(0, "Matmul", 0.0, 1.0), (1, (("Exp", 3),), 0.0, 1.0),
                          (1, (("exp", 2), ("add", 1)), 1.0, 2.0)])
    assert rec.count("exp") == rec.count("EXP") == 5
    assert rec.count("exp", lane="cpu:1") == 5 and rec.count("exp", lane="cpu") == 0
    assert rec.count("matmul", lane="cpu") == 1
    assert rec.count() == 7 and rec.count(lane="cpu:1") == 6
    assert rec.count("sin") == 0 and rec.count(lane="gpu") == 0
