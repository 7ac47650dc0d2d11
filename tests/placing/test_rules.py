"""Rules: parsing, the selectors' globs, last match wins (plain data, no MLX)."""

from __future__ import annotations

import pytest

from unimem.errors import ArgumentTypeError, ArgumentValueError
from unimem.placing.rules import Where, decide, normalise, op_names, parse, parse_selector


def _decide(rules, **where):
    parsed = parse(normalise(rules))
    i = decide(parsed, Where(**where))
    return None if i is None else parsed[i].target


def test_last_match_wins_like_css_without_specificity():
    rules = {"*": "gpu", "module:layers.0": "cpu", "module:layers.0 & op:matmul": "gpu"}
    assert _decide(rules) == "gpu"
    assert _decide(rules, modules=("layers.0", "layers.0.attention")) == "cpu"
    assert _decide(rules, op="__matmul__", modules=("layers.0",)) == "gpu"
    assert _decide(rules, op="exp", modules=("layers.0",)) == "cpu"
    assert _decide(rules, modules=("layers.1",)) == "gpu"


def test_no_rule_matching_leaves_mlx_default():
    assert _decide({"module:head": "cpu"}, modules=("body",)) is None


@pytest.mark.parametrize("pattern,path,hit", [
    ("layers.0", "layers.0", True),
    ("layers.0", "layers.00", False),
    ("layers.*", "layers.3", True),
    ("layers.*", "layers.3.attention", False),   # * stays within one name
    ("layers.**", "layers.3.attention.query_proj", True),  # ** crosses dots
    ("layers.*.attention", "layers.1.attention", True),
    ("**.query_proj", "layers.1.attention.query_proj", True),
    ("layers.?", "layers.12", False),
])
def test_module_globs_over_dotted_paths(pattern, path, hit):
    assert (_decide({f"module:{pattern}": "cpu"}, modules=(path,)) == "cpu") is hit


def test_a_module_rule_covers_what_runs_inside_the_module():
    rules = {"module:layers.0": "cpu:1"}
    assert _decide(rules, modules=("layers.0", "layers.0.attention.query_proj")) == "cpu:1"


def test_op_aliases_cover_functions_methods_and_operators():
    assert {"matmul", "addmm", "__matmul__"} <= set(op_names("matmul"))
    assert op_names("Matmul") == op_names("matmul")  # the primitive's spelling too
    assert set(op_names("mul")) == set(op_names("multiply"))
    rules = {"op:matmul|exp": "cpu:1"}
    assert _decide(rules, op="addmm") == "cpu:1"
    assert _decide(rules, op="exp") == "cpu:1"
    assert _decide(rules, op="log") is None
    assert _decide(rules) is None  # a context (no op) is never an op rule's


def test_regions_and_sites():
    assert _decide({"region:pre*": "cpu:1"}, regions=("outer", "prefetch")) == "cpu:1"
    rules = {"site:train.py:10-20": "cpu:1"}
    assert _decide(rules, op="exp", site=("/home/u/train.py", 15)) == "cpu:1"
    assert _decide(rules, op="exp", site=("/home/u/train.py", 21)) is None
    assert _decide(rules, op="exp", site=("/home/u/mytrain.py", 15)) is None
    assert _decide({"site:train.py": "cpu"}, op="exp", site=("train.py", 999)) == "cpu"


def test_rules_from_dict_or_pairs_keep_their_order():
    assert normalise({"*": "cpu", "op:exp": "gpu"}) == (("*", "cpu"), ("op:exp", "gpu"))
    assert normalise([("*", "cpu"), ["op:exp", "gpu"]]) == (("*", "cpu"), ("op:exp", "gpu"))


@pytest.mark.parametrize("bad,error,text", [
    ({}, ArgumentValueError, "rules is empty"),
    ("*", ArgumentTypeError, "rules must be a dict"),
    ([("*",)], ArgumentValueError, "pair"),
    ({"*": 1}, ArgumentTypeError, "stream name"),
])
def test_bad_rule_lists_say_what_is_expected(bad, error, text):
    with pytest.raises(error, match=text):
        normalise(bad)


@pytest.mark.parametrize("bad", ["layers.0", "op:", "mod:x", "site:a.py:x-y", "* & "])
def test_bad_selectors_name_the_accepted_forms(bad):
    with pytest.raises(ArgumentValueError, match="is not"):
        parse_selector(bad)
