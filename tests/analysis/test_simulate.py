"""The placement simulator: MLX's tape order, stream FIFOs, hand-offs, search, fits."""

from __future__ import annotations

import pytest

from unimem.analysis.simulate import Simulator, fit_handoff, search, tape_order
from unimem.model.graph import ArrayInfo, Graph, Node, StreamId


def graph(edges: dict[int, list[int]], n: int, outputs: list[int], nbytes: int = 100) -> Graph:
    """Node i reads the outputs of edges[i]; node i makes array i (nbytes); one input array."""
    arrays = {i: ArrayInfo(i, f"a{i}", (), "float32", nbytes, "intermediate", i)
              for i in range(n)}
    arrays[n] = ArrayInfo(n, "x", (), "float32", nbytes, "input", None)
    nodes = [Node(i, f"op{i}", StreamId("cpu", 0), "cpu",
                  tuple(edges.get(i, [])) or (n,), (i,)) for i in range(n)]
    return Graph("g", {}, nodes, arrays, tuple(outputs))


def run(g, streams, costs, handoff=0.0):
    sim = Simulator(g)
    return sim.run(dict(enumerate(streams)), lambda i, s: costs[i],
                   lambda a, b, nbytes: handoff)


def test_a_chain_on_one_stream_takes_the_sum():
    g = graph({1: [0], 2: [1]}, 3, [2])
    assert run(g, ["cpu"] * 3, [1.0, 2.0, 3.0]).makespan == pytest.approx(6.0)


def test_independent_branches_on_two_streams_overlap():
    g = graph({2: [0, 1]}, 3, [2])  # 0 and 1 independent, 2 joins them
    assert run(g, ["cpu", "cpu", "cpu"], [2.0, 3.0, 1.0]).makespan == pytest.approx(6.0)
    assert run(g, ["cpu", "cpu:1", "cpu"], [2.0, 3.0, 1.0]).makespan == pytest.approx(4.0)
    # each cross-stream edge adds its hand-off
    assert run(g, ["cpu", "cpu:1", "cpu"], [2.0, 3.0, 1.0], 0.5).makespan == pytest.approx(4.5)


def test_a_wait_blocks_what_comes_after_it_on_its_stream():
    # 0 (cpu:1, long) -> 1 (cpu, waits); 2 (cpu, independent) is dispatched after 1
    g = graph({1: [0]}, 3, [1, 2])
    sim = Simulator(g, order=[0, 1, 2])
    s = sim.run({0: "cpu:1", 1: "cpu", 2: "cpu"}, lambda i, st: [5.0, 1.0, 1.0][i],
                lambda a, b, n: 0.0)
    assert s.start[2] == pytest.approx(6.0)  # FIFO: behind the waiting 1, not at 0
    assert s.busy == {"cpu:1": 5.0, "cpu": 2.0}


def test_tape_order_runs_the_deeper_branch_first():
    # out = join(deep chain 0->1->2, shallow 3): MLX's tape runs the deep branch first
    g = graph({1: [0], 2: [1], 4: [2, 3]}, 5, [4])
    order = tape_order(g)
    assert order.index(0) < order.index(3) and order[-1] == 4
    assert all(order.index(p) < order.index(c) for c, ps in {1: [0], 2: [1], 4: [2, 3]}.items()
               for p in ps)


def test_a_measured_order_missing_nodes_is_completed_safely():
    g = graph({1: [0], 2: [1]}, 3, [2])
    sim = Simulator(g, order=[2, 0])  # node 1 untimed (e.g. a Copy); 2 listed before its input
    assert sim.order == [0, 1, 2]


def test_search_is_exhaustive_on_small_problems_and_finds_the_known_best():
    cost = {("a", "x"): 3, ("a", "y"): 1, ("b", "x"): 1, ("b", "y"): 3,
            ("c", "x"): 2, ("c", "y"): 2, ("d", "x"): 5, ("d", "y"): 1}
    calls = []

    def predict(assign):
        calls.append(dict(assign))
        return sum(cost[(g, t)] for g, t in assign.items())

    best = search(["a", "b", "c", "d"], ["x", "y"], predict, top=3)
    assert best[0] == ({"a": "y", "b": "x", "c": "x", "d": "y"}, 5)
    assert len(calls) == 16 and [v for _, v in best] == sorted(v for _, v in best)


def test_search_beyond_the_limit_seeds_and_improves_locally():
    groups = [f"g{i}" for i in range(14)]  # 2**14 > the limit
    want = {g: ("y" if i % 3 == 0 else "x") for i, g in enumerate(groups)}
    calls = []

    def predict(assign):
        calls.append(1)
        return sum(g_t != want[g] for g, g_t in assign.items())

    best = search(groups, ["x", "y"], predict, exhaustive_limit=4096)
    assert best[0] == (want, 0) and len(calls) < 4096


def test_handoff_fit_recovers_exact_coefficients_and_stays_non_negative():
    h = fit_handoff("cpu", "gpu", [(0, 2e-5), (1 << 20, 2e-5 + 1e-4), (1 << 24, 2e-5 + 16e-4)])
    assert h.fixed == pytest.approx(2e-5) and h.per_byte == pytest.approx(1e-4 / (1 << 20))
    assert h.cost(1 << 22) == pytest.approx(2e-5 + 4e-4) and h.samples == 3
    falling = fit_handoff("cpu", "cpu", [(1, 3e-5), (1 << 20, 2e-5), (1 << 24, 1e-5)])
    assert falling.per_byte == 0 and falling.fixed == pytest.approx(2e-5)
    negative = fit_handoff("cpu", "cpu", [(0, -1e-6), (1 << 20, 1e-5), (1 << 21, 2.1e-5)])
    assert negative.fixed == 0 and negative.per_byte > 0
