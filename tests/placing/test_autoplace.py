"""Autoplace: groups, MLX's dispatch order, the decision, and a real run."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx import nn

import unimem as um
from unimem.analysis.simulate import tape_order
from unimem.autoplace import choose
from unimem.capture import native_run
from unimem.capture.call import bind
from unimem.errors import ArgumentTypeError, ArgumentValueError
from unimem.model.placement import Candidate
from unimem.model.recording import Timing
from unimem.placing.groups import module_groups


class TwoTowers(nn.Module):
    """Two independent stacks of layers on one input: work two streams can share."""

    def __init__(self, dims: int, depth: int) -> None:
        super().__init__()
        self.left = nn.Sequential(*[nn.Linear(dims, dims) for _ in range(depth)])
        self.right = nn.Sequential(*[nn.Linear(dims, dims) for _ in range(depth)])

    def __call__(self, x):
        return self.left(x) + self.right(x)


def forward(model, x):
    return model(x)


@pytest.fixture(scope="module")
def towers():
    mx.random.seed(0)
    model = TwoTowers(64, 2)
    x = mx.random.normal((32, 64))
    mx.eval(model.parameters(), x)
    return model, x


def test_module_groups_are_the_outermost_modules():
    assert module_groups(TwoTowers(8, 2)) == ["left", "right"]
    assert module_groups(nn.TransformerEncoder(2, 8, 2)) == ["layers.0", "layers.1", "ln"]
    assert module_groups(nn.Sequential(TwoTowers(8, 1))) == ["layers.0.left", "layers.0.right"]


def _dispatch_order(fun, *args):
    call = bind(fun, args, {})
    captured = native_run.run(call)
    graph = native_run.to_graph(captured, "t", {}, "")
    ids = [i for g in captured.graphs for i in g.ids]
    index = {nid: k for k, nid in enumerate(ids)}
    measured = [index[r.id] for r in sorted(captured.records, key=lambda r: r.host_begin)]
    return graph, measured


@pytest.mark.parametrize("width", [3, 50])
def test_tape_order_is_the_order_mlx_dispatches_in(width):
    x = mx.ones((8, 8))
    mx.eval(x)

    def fun(x):  # `width` independent branches of different depths, joined
        with mx.stream(mx.cpu):  # the native probe stamps CPU primitives' dispatch
            outs = [x]
            for i in range(width):
                y = x + i
                for _ in range(i % 4):
                    y = mx.exp(y)
                outs.append(y)
            total = outs[0]
            for o in outs[1:]:
                total = total + o
            return total.sum()

    graph, measured = _dispatch_order(fun, x)
    assert tape_order(graph) == measured  # every primitive is timed here: the whole order


def test_choose_returns_a_measured_hand_placement_unless_a_prediction_wins_beyond_noise():
    def cand(label, source, samples):
        return Candidate(label, (("*", "cpu"),), source, measured=Timing(tuple(samples), 0))

    hand = cand("hand", "hand", [1.0, 1.01, 0.99, 1.0])
    close = cand("p1", "predicted", [0.99, 1.0, 0.98, 1.01])  # faster median, within noise
    assert choose([hand, close], 0.02)[:2] == ("hand", False)
    fast = cand("p2", "predicted", [0.5, 0.51, 0.49, 0.5])
    assert choose([hand, close, fast], 0.02)[:2] == ("p2", True)
    slow_trivial = cand("all cpu", "trivial", [2.0, 2.0, 2.0])
    assert choose([slow_trivial, hand], 0.02)[0] == "hand"


def test_autoplace_never_returns_a_placement_slower_than_the_best_hand_one(towers):
    model, x = towers

    def fake(times):  # a deterministic clock: seconds per placement, by its rules
        def timer(call):
            return times(call.rules)
        return timer

    hand = {"hand": um.place(model, {"*": "cpu", "module:left": "cpu:1"})}
    # the hand placement is the fastest: it is returned, whatever was predicted
    ledger = um.autoplace(forward, model, x, tried=hand, rounds=3, warmup=0,
                          timer=fake(lambda r: 1.0 if r == hand["hand"].as_dict() else 2.0))
    assert ledger.chosen == "hand" and not ledger.beyond_noise
    # a predicted one far faster, beyond noise: that one
    ledger = um.autoplace(forward, model, x, tried=hand, rounds=3, warmup=0,
                          timer=fake(lambda r: 0.5 if r.get("module:right") else 1.0))
    best = ledger.best
    assert best.source == "predicted" and ledger.beyond_noise
    assert best.median == min(c.median for c in ledger.measured)
    assert all(c.measured is not None and len(c.measured.samples) == 3
               for c in ledger.candidates)


def test_autoplace_on_a_real_run_keeps_its_promises(towers):
    model, x = towers
    ledger = um.autoplace(forward, model, x, targets=("cpu", "cpu:1"), rounds=3, warmup=1,
                          top=2)
    assert [g.name for g in ledger.groups] == ["left", "right", "(rest)"]
    assert ledger.groups[0].primitives == ledger.groups[1].primitives > 0
    assert ledger.targets == ("cpu", "cpu:1")
    labels = [c.label for c in ledger.candidates]
    assert labels[:2] == ["all cpu", "all cpu:1"] and "predicted #1" in labels
    assert all(c.predicted is not None and c.predicted > 0 for c in ledger.candidates)
    hand_best = min(c.median for c in ledger.candidates if c.source != "predicted")
    assert ledger.best.median <= hand_best  # by construction, whatever the machine's noise
    assert any(n.startswith("outputs match") for n in ledger.notes)
    with um.place(model, ledger.rules):  # the answer is rules um.place takes
        mx.eval(forward(model, x))
    lines = repr(ledger).splitlines()
    assert lines[0] == "Autoplace of forward: 3 groups on cpu, cpu:1; 4 placements measured"


def test_bad_input_to_autoplace(towers):
    model, x = towers
    with pytest.raises(ArgumentTypeError, match="mlx.nn model"):
        um.autoplace(lambda x: mx.exp(x), x)
    with pytest.raises(ArgumentValueError, match="at least two"):
        um.autoplace(forward, model, x, targets=("cpu",))
    with pytest.raises(ArgumentValueError, match="not module paths"):
        um.autoplace(forward, model, x, groups=["nope"])
