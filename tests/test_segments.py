"""Segment mode (the default): how calls are grouped before MLX sees them."""

import mlx.core as mx

import unimem as um


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
    p = um.profile(_interleaved, x, s1="cpu", s2="cpu:1", repeat=1, trace=False)
    for lane in ("cpu", "cpu:1"):
        counts = [op.count for op in p.ops_on(lane)]
        assert sum(counts) == 100 and len(counts) <= 3  # not one segment per switch
    assert p.flows == []


def test_a_reader_on_another_stream_cuts_the_producer_segment_first():
    x = mx.ones((16,))
    p = um.profile(_alternating, x, s1="cpu", s2="cpu:1", repeat=1, trace=False)
    assert all(op.count == 1 for op in p.ops)  # every op reads the other stream
    assert len(p.flows) == 19 and all(f.kind == "cross stream" for f in p.flows)
    assert all(p.ops[f.src].end <= p.ops[f.dst].end for f in p.flows)


def test_a_quiet_stream_is_not_held_back_to_the_end(fun, ab):
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, trace=False)
    (matmul,) = p.ops_on("cpu")
    first_exps = p.ops_on("cpu:1")[0]
    assert matmul.submit <= first_exps.submit + 1e-3  # handed off with the first full segment
    assert [x.name for x in p.lanes][:2] == ["cpu", "cpu:1"]


def test_summary_says_what_was_measured_and_what_derived(fun, ab):
    text = repr(um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=1, trace=False))
    assert "  times: ends measured for 11 of 11 ops, starts derived for 11" in text
    text = repr(um.profile(fun, *ab, d1="cpu", d2="cpu", repeat=1, trace=False,
                           mode="exclusive"))
    assert "starts measured for 501" in text and "derived" not in text.split("times:")[1]
