"""The export method of tracing (mx.export_function read back), tested directly: it is what
um.trace falls back to where the native probe is not built."""

from __future__ import annotations

import mlx.core as mx
import pytest

import unimem as um
from unimem.capture.call import bind
from unimem.capture.trace import capture
from unimem.model.graph import CROSS_STREAM, SAME_STREAM


def export_trace(fun, *args, placement=None, **kwargs):
    """The export method, whatever um.trace picks on this machine."""
    return capture(bind(fun, args, kwargs, placement))


def test_docs_example_streams_read_from_the_export(fun, ab):
    g = export_trace(fun, *ab, d1="cpu", d2="cpu:1")
    assert g.count("Matmul", "cpu") == 1
    assert g.count("Exp", "cpu:1") == 500
    assert g.count() == 501
    # eval's Synchronizer sits on the first output's stream (the matmul's); the exp
    # chain's result is fenced to it: the one cross-stream edge of this graph.
    sync = g.nodes[-1]
    assert sync.synthetic and sync.lane == "cpu"
    (edge,) = g.cross_stream_edges
    assert edge.kind == CROSS_STREAM and edge.dst == sync.index
    assert g.nodes[edge.src].name == "Exp"
    # and the graph says where that node comes from, and why a profile has no bar for it
    (note,) = [n for n in g.notes if n.startswith("Synchronizer")]
    assert "unimem adds it where mx.eval makes one" in note and "no bar" in note


def test_operator_lands_on_default_stream_with_internal_primitives(ab):
    def f(a, s):
        return mx.exp(a, stream=s) * 2

    g = export_trace(f, ab[0], s="cpu:1")
    default = mx.default_device().type.name  # "gpu" where MLX has one, else "cpu"
    assert g.count("Exp", "cpu:1") == 1
    assert g.count("Multiply", default) == 1  # `*` used the default device's stream
    assert g.count("Broadcast", default) == 1  # the scalar 2, broadcast internally
    assert [n.name for n in g.on_default_stream([g.streams()["cpu:1"]])] == [
        "Broadcast", "Multiply"]


def test_add_pair_edge_and_bytes():
    a = mx.ones((3, 5))
    b = mx.ones((3, 5))

    def pair(a, b, s1, s2):
        c = mx.add(a, b, stream=s1)
        return mx.add(a, c, stream=s2)

    g = export_trace(pair, a, b, s1="cpu", s2="cpu:1")
    crossing = [e for e in g.edges if e.kind != SAME_STREAM]
    assert len(crossing) == 1 and crossing[0].nbytes == 3 * 5 * 4
    assert g.fences[crossing[0].array][1] is False  # same device: no device switch
    assert g.bytes_crossing()[CROSS_STREAM] == 60


def test_multi_output_and_state():
    def f(x):
        q, r = mx.linalg.qr(x, stream=mx.cpu)
        return q, r, mx.reshape(x, (-1,))

    g = export_trace(f, mx.random.normal((4, 4)))
    qr = next(n for n in g.nodes if n.name == "QRF")
    assert len(qr.outputs) == 2
    reshape = next(n for n in g.nodes if n.name == "Reshape")
    assert reshape.arguments == ((-1,),)
    assert {g.arrays[a].role for a in g.outputs} == {"output"}


def test_constants_and_kwargs_arrays():
    w = mx.ones((4,))

    def f(x, *, scale, s):
        return mx.multiply(x, scale, stream=s) + w  # w is a constant (closure)

    g = export_trace(f, mx.ones((4,)), scale=mx.full((4,), 2.0), s="cpu:1")
    roles = sorted(a.role for a in g.arrays.values())
    assert roles.count("input") == 2 and roles.count("constant") == 1


def test_graph_round_trips_through_dict(fun, ab):
    g = export_trace(fun, *ab, d1="cpu", d2="cpu:1")
    g2 = um.Graph.from_dict(g.to_dict())
    assert repr(g2) == repr(g)
    assert [e.kind for e in g2.edges] == [e.kind for e in g.edges]


def test_trace_runs_nothing(ab):
    seen = []

    def f(a, s):
        seen.append(1)
        return mx.exp(a, stream=s)

    mx.synchronize()
    before = mx.get_active_memory()
    export_trace(f, ab[0], s="cpu")
    assert mx.get_active_memory() == before  # no output was allocated
    assert seen == [1, 1]  # traced twice: once per export (callback, then file)


def test_ten_thousand_primitives():
    def chain(x, s1, s2):
        for i in range(5000):
            x = mx.sin(x, stream=s1 if i % 2 else s2)
            x = mx.add(x, 1.0, stream=s1)
        return x

    g = export_trace(chain, mx.ones((8,)), s1="cpu", s2="cpu:1")
    assert g.count("Sin") == 5000 and g.count("Add") == 5000
    # sin on cpu:1 -> add on cpu (2500 times), add on cpu -> the next sin on cpu:1 (2499)
    assert len(g.cross_stream_edges) == 4999


def test_repr_is_deterministic(fun, ab):
    text = repr(export_trace(fun, *ab, d1="cpu", d2="cpu:1"))
    assert "0x" not in text and text == repr(export_trace(fun, *ab, d1="cpu", d2="cpu:1"))
    assert "Exp ×500" in text


def test_bad_parameter_name(fun, ab):
    with pytest.raises(ValueError, match="no parameter 'd3'"):
        um.trace(fun, *ab, d1="cpu", d2="cpu", placement={"d3": "cpu"})
