"""Plans applied to real MLX code: where the traced graph says each primitive ran."""

from __future__ import annotations

import threading
from collections import Counter

import mlx.core as mx
import pytest
from mlx import nn

import unimem as um
from unimem.errors import ArgumentValueError, GPUUnavailableError
from unimem.placing.hooks import compile_enabled

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def model():
    mx.random.seed(0)
    m = nn.TransformerEncoder(2, 32, 4, mlp_dims=64)
    mx.eval(m.parameters())
    return m


@pytest.fixture(scope="module")
def x():
    mx.random.seed(1)
    out = mx.random.normal((2, 8, 32))
    mx.eval(out)
    return out


def forward(model, x):
    return model(x, None)


def loss(model, x):
    return model(x, None).square().mean()


def step(model, x):
    return nn.value_and_grad(model, loss)(model, x)


def names(graph, lane):
    return Counter(n.name for n in graph.primitives if n.lane == lane)


def test_a_module_rule_places_every_forward_primitive_of_that_module(model, x):
    # compile off in both (a plan turns it off; nn.relu is a compiled function)
    alone = um.trace(lambda x: model.layers[0](x, None), x, placement=um.place({"*": "cpu"}))
    plan = um.place(model, {"*": "cpu", "module:layers.0": "cpu:1"})
    g = um.trace(forward, model, x, placement=plan)
    assert names(g, "cpu:1") == names(alone, "cpu")  # layers.0's ops, exactly
    assert g.count(lane="cpu") == len(g.primitives) - len(alone.primitives)
    assert g.placement == {"*": "cpu", "module:layers.0": "cpu:1"}


def test_the_backward_pass_follows_its_forward_module(model, x):
    plan = um.place(model, {"*": "cpu", "module:layers.0": "cpu:1"})
    fwd = names(um.trace(forward, model, x, placement=plan), "cpu:1")
    train = names(um.trace(step, model, x, placement=plan), "cpu:1")
    assert train - fwd  # more than the forward: its backward ops too
    assert all(train[k] >= v for k, v in fwd.items())
    products = lambda c: c["Matmul"] + c["AddMM"]
    assert products(train) >= 2 * products(fwd)  # each product's gradient is products too


def test_op_rules_redirect_operators_functions_and_layers(model, x):
    plan = um.place(model, {"*": "cpu", "op:matmul": "cpu:1"})
    g = um.trace(forward, model, x, placement=plan)
    on1, on0 = names(g, "cpu:1"), names(g, "cpu")
    # per layer: four attention projections (x @ W.T: Matmul), linear1 and linear2 (AddMM)
    assert (on1["Matmul"], on1["AddMM"]) == (8, 4)
    # the attention fallback's own products are made in C++, not by a call to matmul
    assert (on0["Matmul"], on0["AddMM"]) == (4, 0)
    assert plan.placed[1] > 0


def test_regions_and_sites_place_blocks_and_lines(x):
    def fun(x):
        with um.region("pre"):
            y = mx.exp(x) + 1
        z = y * 2
        return z.sum()

    g = um.trace(fun, x, placement=um.place({"region:pre": "cpu:1"}))
    assert names(g, "cpu:1") == Counter({"Exp": 1, "Add": 1, "Broadcast": 1})
    line = fun.__code__.co_firstlineno + 3  # z = y * 2
    g = um.trace(fun, x, placement=um.place({f"site:test_plan.py:{line}": "cpu:1"}))
    assert names(g, "cpu:1") == Counter({"Multiply": 1, "Broadcast": 1})


def test_a_region_outside_a_plan_does_nothing(x):
    before = mx.default_stream(mx.cpu)
    with um.region("anything"):
        assert mx.default_stream(mx.cpu) == before


def _state():
    return (mx.default_stream(mx.cpu), mx.default_device(),
            nn.TransformerEncoderLayer.__dict__["__call__"], mx.exp, mx.array.__matmul__,
            compile_enabled())


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_everything_is_undone_on_error_and_interrupt(model, x, error):
    before = _state()
    plan = um.place(model, {"*": "cpu:1", "op:exp|matmul": "cpu:2"})
    with pytest.raises(error), plan:
        assert mx.exp is not before[3] and not compile_enabled()
        model(x, None)
        raise error("stop")
    assert _state() == before
    assert "__call__" not in vars(nn.Module)  # never given one


def test_compiled_functions_run_op_by_op_inside_a_plan(x):
    compiled = mx.compile(lambda x: mx.exp(x) * 2)
    g = um.trace(lambda x: compiled(x), x, placement=um.place({"*": "cpu", "op:exp": "cpu:1"}))
    assert names(g, "cpu:1")["Exp"] == 1
    assert not any(n.name.startswith("Compiled") for n in g.primitives)
    kept = um.trace(lambda x: compiled(x), x,
                    placement=um.place({"*": "cpu", "op:exp": "cpu:1"}, compile="keep"))
    fused = [n for n in kept.primitives if n.name.startswith("Compiled")]
    assert len(fused) == 1 and fused[0].lane == "cpu"  # fused: the op rule could not reach
    assert any("mx.compile" in note for note in kept.notes)
    assert compile_enabled()


def test_a_plan_on_one_thread_leaves_other_threads_alone(x):
    seen = {}
    go, done = threading.Event(), threading.Event()

    def other():
        go.wait()
        seen["graph"] = um.trace(lambda x: mx.exp(x), x)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with um.place({"op:exp": "cpu:1"}):
        go.set()
        done.wait(30)
    t.join()
    (lane,) = seen["graph"].streams()  # the other thread's default stream, not cpu:1
    assert lane != "cpu:1" and names(seen["graph"], lane) == Counter({"Exp": 1})


def test_plans_compare_side_by_side(model, x):
    c = um.compare(step, model, x, repeat=2, warmup=1, placements={
        "one stream": um.place(model, {"*": "cpu"}),
        "layer 0 apart": um.place(model, {"*": "cpu", "module:layers.0": "cpu:1"}),
    })
    assert c.labels == ["one stream", "layer 0 apart"]
    assert c["layer 0 apart"].placement == {"*": "cpu", "module:layers.0": "cpu:1"}
    assert {lane.name for lane in c["layer 0 apart"].lanes} >= {"cpu", "cpu:1"}


def test_bad_plans_fail_before_anything_runs(model):
    with pytest.raises(ArgumentValueError, match="module: rules need the model"):
        um.place({"module:layers.0": "cpu"})
    with pytest.raises(ArgumentValueError, match="rule 'op:exp'"):
        um.place({"op:exp": "tpu"})
    if not mx.is_available(mx.gpu):
        before = _state()
        with pytest.raises(GPUUnavailableError), um.place(model, {"*": "gpu"}):
            pass
        assert _state() == before
