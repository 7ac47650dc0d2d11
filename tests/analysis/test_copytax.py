"""Copy-tax arithmetic on a graph and a recording whose edges are known by construction."""

from __future__ import annotations

import pytest

import unimem as um
from unimem.model.graph import CROSS_STREAM, DEVICE_SWITCH, ArrayInfo, Graph, Node, StreamId
from unimem.model.recording import Flow, Lane, Op, Recording

GPU, CPU1, CPU2 = StreamId("gpu", 0), StreamId("cpu", 1), StreamId("cpu", 2)


def _graph() -> Graph:
    """input -> A(gpu) -> B(cpu:1) -> C(cpu:2) -> D(gpu, also reads A's output)."""
    arrays = {
        0: ArrayInfo(0, "x", (250,), "float32", 1000, "input"),
        1: ArrayInfo(1, "a", (1000,), "float32", 4000, "intermediate", producer=0),
        2: ArrayInfo(2, "b", (200,), "float32", 800, "intermediate", producer=1),
        3: ArrayInfo(3, "c", (50,), "float32", 200, "intermediate", producer=2),
        4: ArrayInfo(4, "d", (50,), "float32", 200, "output", producer=3),
    }
    nodes = [
        Node(0, "Exp", GPU, "gpu", (0,), (1,)),
        Node(1, "Sin", CPU1, "cpu:1", (1,), (2,)),  # device switch: 4000 B
        Node(2, "Cos", CPU2, "cpu:2", (2,), (3,)),  # cross stream: 800 B
        Node(3, "Add", GPU, "gpu", (3, 1), (4,)),  # device switch 200 B; a: same stream
    ]
    return Graph("known", {}, nodes, arrays, (4,))


def test_graph_edges_bytes_and_models():
    tax = um.copy_tax(_graph(), bandwidth=1000.0, backend="cpu")
    assert [(e.src, e.dst, e.kind, e.nbytes) for e in tax.edges] == [
        ("Exp#0 (gpu)", "Sin#1 (cpu:1)", DEVICE_SWITCH, 4000),
        ("Sin#1 (cpu:1)", "Cos#2 (cpu:2)", CROSS_STREAM, 800),
        ("Cos#2 (cpu:2)", "Add#3 (gpu)", DEVICE_SWITCH, 200),
    ]
    assert tax.nbytes == 5000
    assert [e.discrete_bytes for e in tax.edges] == [4000, 0, 200]
    assert tax.discrete_bytes == 4200
    assert tax.bus_seconds == pytest.approx(4.2)  # 4200 B at 1000 B/s: a model
    assert tax.platform_bytes == 0  # host memory only: nothing moves


@pytest.mark.parametrize("backend, moved", [("metal", 0), ("cpu", 0), ("cuda", 4200)])
def test_platform_bytes_per_backend(backend, moved):
    tax = um.copy_tax(_graph(), backend=backend)
    assert tax.platform_bytes == moved
    text = repr(tax)
    assert "(model, not measured)" in text
    if backend == "cuda":
        assert "≤ 3.9 KiB" in text and "bound, not measured" in text


def test_recording_flows_skip_untracked():
    rec = Recording("rec", {}, "op", "test", platform={"backend": "cuda"})
    rec.lanes += [Lane(0, "gpu", "gpu", 0), Lane(1, "cpu", "cpu", 1), Lane(2, "untracked", "?", -1)]
    rec.ops += [Op(0, 0, "exp", 0.0), Op(1, 1, "sin", 0.0, inputs=(0,)),
                Op(2, 2, (("untracked", 1),), 0.0), Op(3, 1, "cos", 0.0, inputs=(2,))]
    rec.flows += [Flow(0, 1, DEVICE_SWITCH, 4096), Flow(2, 3, "untracked", 64)]
    tax = um.copy_tax(rec)
    assert tax.backend == "cuda"  # the platform that made the recording
    assert [(e.src, e.dst, e.nbytes, e.platform_bytes) for e in tax.edges] == [
        ("op 0 (gpu)", "op 1 (cpu)", 4096, 4096)]


def test_backend_comes_from_the_source_or_this_machine():
    from unimem.analysis import copytax as analysis

    graph, rec = _graph(), Recording("watched", {}, "watch", "test")  # neither names one
    assert analysis.recorded_backend(graph) is None and analysis.recorded_backend(rec) is None
    with pytest.raises(ValueError, match="names no platform"):  # analysis reads data only
        analysis.copy_tax(graph)
    here = um.platform().backend
    assert um.copy_tax(graph).backend == here == um.copy_tax(rec).backend  # the front door
    rec.platform["backend"] = "metal"
    assert analysis.recorded_backend(rec) == "metal" == um.copy_tax(rec).backend
    assert um.copy_tax(rec, backend="cuda").backend == "cuda"


def test_repr_is_deterministic():
    text = repr(um.copy_tax(_graph(), backend="metal"))
    assert text.splitlines()[0] == (
        "Copy tax of known (metal): 3 cross-stream edges (2 device switch, 1 same device)")
    assert "0x" not in text and text == repr(um.copy_tax(_graph(), backend="metal"))


def test_bad_input():
    with pytest.raises(TypeError, match="Graph"):
        um.copy_tax("not a graph")
    with pytest.raises(ValueError, match="bandwidth"):
        um.copy_tax(_graph(), bandwidth=0)
    with pytest.raises(ValueError, match="backend"):
        um.copy_tax(_graph(), backend="tpu")


def _probe(codes: list[int]):
    import numpy as np

    from unimem.model.memory import Residency

    return Residency((len(codes) * 1024,), "float32", len(codes) * 4096, 4096,
                     np.array(codes, dtype=np.int32), "cuda", True, 1e-4)


def test_observe_replaces_a_bound_with_pages_the_probe_saw_move():
    tax = um.copy_tax(_graph(), backend="cuda")
    before, after = _probe([-2, -2, -2, -2]), _probe([0, 0, -2, -2])  # half came to the host
    e = tax.observe(0, before, after, seconds=0.05)
    assert (e.platform_bytes, e.observed, e.seconds) == (8192, True, 0.05)
    assert tax.platform_bytes == 8192 + 200  # edge 2 is still the bound
    text = repr(tax)
    assert "8.0 KiB moved (probed, 50.00 ms)" in text
    assert "observed with the page probe: 1 of 3 edges" in text
    with pytest.raises(IndexError):
        tax.observe(3, before, after)
    with pytest.raises(ValueError, match="same array"):
        tax.observe(0, before, _probe([0]))


def test_a_cupti_recording_carries_what_the_run_copied():
    """memcpy bars (CUPTI's, measured on the device) are summed beside the models."""
    rec = Recording("handoff", {}, "native", "measured natively", platform={"backend": "cuda"})
    rec.lanes += [Lane(0, "gpu", "gpu", 0), Lane(1, "cpu", "cpu", 0),
                  Lane(2, "gpu copies", "gpu", -1)]
    rec.ops += [Op(0, 0, "Exp", 0.0, start=0.0, end=1e-3, start_measured=True,
                   activity="kernel", nbytes=4096),
                Op(1, 2, "memcpy", 1e-3, start=1e-3, end=1.5e-3, start_measured=True,
                   activity="memcpy", nbytes=4096, detail="memcpy device to device, device "
                   "to managed"),
                Op(2, 1, "Sum", 1e-3, start=1.6e-3, end=2e-3, start_measured=True, inputs=(0,))]
    rec.flows.append(Flow(0, 2, DEVICE_SWITCH, 4096))
    tax = um.copy_tax(rec)
    assert (tax.copies, tax.copied_bytes) == (1, 4096)
    assert tax.copy_seconds == pytest.approx(0.5e-3)
    assert "measured on the device (CUPTI): 1 memcpy, 4.0 KiB in " in repr(tax)
    assert um.copy_tax(_graph(), backend="cuda").copies == 0  # a graph ran nowhere
