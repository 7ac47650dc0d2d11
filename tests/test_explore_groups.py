"""um.explore of code without stream parameters: a device control per group of ops."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx import nn

import unimem as um
from unimem.errors import ArgumentValueError
from unimem.explore_groups import ExploreGroups


def loss(model, x):
    return model(x, None).square().mean()


def step(model, x):
    return nn.value_and_grad(model, loss)(model, x)


@pytest.fixture(scope="module")
def explored():
    mx.random.seed(0)
    model = nn.TransformerEncoder(2, 16, 2, mlp_dims=32)
    x = mx.random.normal((2, 4, 16))
    mx.eval(model.parameters(), x)
    return um.explore(step, model, x, repeat=1, warmup=0)


def test_a_function_without_stream_parameters_gets_a_control_per_module(explored):
    e = explored
    assert isinstance(e, ExploreGroups) and e.kind == "module"
    assert e.groups == ["layers.0", "layers.1", "ln"]
    assert list(e.controls) == ["layers.0", "layers.1", "ln", "(rest)"]
    # every primitive of the traced step belongs to exactly one group
    assert sum(e.stats[g].primitives for g in e.controls) == len(e.member.graph.primitives)
    assert e.rules_text() == "um.place(model, {'*': 'cpu'})"


def test_placing_a_group_reruns_under_its_rules_and_shows_the_cut(explored):
    e = explored
    before = len(e.results)
    rec = e.run({"layers.0": "cpu:1"})
    assert len(e.results) == before + 1 and e.controls["layers.0"].value == "cpu:1"
    assert rec.placement == {"*": "cpu", "module:layers.0": "cpu:1"}
    assert e.rules_text() == "um.place(model, {'*': 'cpu', 'module:layers.0': 'cpu:1'})"
    on1 = [n for n in rec.graph.primitives if n.lane == "cpu:1"]
    assert len(on1) == e.stats["layers.0"].primitives  # the whole module, backward included
    pairs = {(row[0], row[1]) for row in e.cut_table()[1:]}
    assert ("layers.0", "layers.1") in pairs and ("(rest)", "layers.0") in pairs
    assert ("layers.0", "cpu:1") in e.times  # measured where it ran
    e.controls["layers.0"].value = "cpu"  # a control re-runs by itself
    assert len(e.results) == before + 2 and e.rules_text() == "um.place(model, {'*': 'cpu'})"


def test_groups_by_op_use_the_names_rules_use(explored):
    e = explored
    e.kind_toggle.value = "op"
    try:
        assert "matmul" in e.groups and "__matmul__" not in e.groups
        rec = e.run({"matmul": "cpu:1"})
        assert rec.placement == {"*": "cpu", "op:matmul": "cpu:1"}
        assert {n.name for n in rec.graph.primitives if n.lane == "cpu:1"} >= {"Matmul", "AddMM"}
        assert repr(e).splitlines()[0].startswith("Explore step: ")
    finally:
        e.kind_toggle.value = "module"


def test_bad_input_says_what_to_do(explored):
    with pytest.raises(ValueError, match="no group 'nope'"):
        explored.run({"nope": "cpu"})
    with pytest.raises(ArgumentValueError, match="no stream parameters and no mlx.nn model"):
        um.explore(lambda x: mx.exp(x), mx.ones(3), repeat=1)
    e = um.explore(lambda x: mx.exp(x) * 2, mx.ones(3), groups="op", repeat=1, warmup=0)
    try:
        assert e.groups == ["exp", "multiply"]
    finally:
        e.close()
