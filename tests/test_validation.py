"""Every public argument is checked at its front door, before anything runs or is patched.

Each error is a UnimemError that keeps its builtin base (TypeError / ValueError)
and names the argument, what was given and what is accepted.
"""

from __future__ import annotations

import functools
import math

import mlx.core as mx
import pytest

import unimem as um
from unimem.capture import evalpoints
from unimem.capture.call import bind
from unimem.errors import ArgumentTypeError, ArgumentValueError, UnimemError


def one(a, d):
    return mx.exp(a, stream=d)


def optioned(a, backend, d=None):
    """``backend`` is an ordinary option that can read "cpu"; ``d`` is the stream."""
    if backend == "cpu":
        a = a + 1
    return mx.exp(a, stream=d)


@pytest.fixture
def a():
    x = mx.ones((8,))
    mx.eval(x)
    return x


def _never(*args, **kwargs):
    raise AssertionError("ran although an argument was bad")


BAD_COUNTS = [(1.5, ArgumentTypeError), (None, ArgumentTypeError), ("3", ArgumentTypeError),
              (True, ArgumentTypeError), (-1, ArgumentValueError)]


@pytest.mark.parametrize("arg", ["repeat", "warmup"])
@pytest.mark.parametrize("value,error", BAD_COUNTS)
@pytest.mark.parametrize("door", ["profile", "compare", "explore"])
def test_repeat_and_warmup_are_ints(monkeypatch, a, door, arg, value, error):
    monkeypatch.setattr("unimem.profiler.time_plain", _never)
    kwargs = {arg: value}
    with pytest.raises(error, match=f"^{arg} must be an int of at least") as info:
        if door == "profile":
            um.profile(one, a, d="cpu", **kwargs)
        elif door == "compare":
            um.compare(one, a, placements={"cpu": {"d": "cpu"}}, **kwargs)
        else:
            um.explore(one, a, d="cpu", **kwargs)
    assert repr(value) in str(info.value) and isinstance(info.value, UnimemError)
    base = TypeError if error is ArgumentTypeError else ValueError
    assert isinstance(info.value, base)


def test_segment_size_is_checked_before_any_timed_run(monkeypatch, a):
    monkeypatch.setattr("unimem.profiler.time_plain", _never)
    with pytest.raises(ArgumentValueError, match="segment_size must be an int of at least 1"):
        um.profile(one, a, d="cpu", segment_size=0, mode="segment")
    with pytest.raises(ArgumentTypeError, match="trace must be True or False"):
        um.profile(one, a, d="cpu", trace="yes")
    with pytest.raises(ArgumentTypeError, match="mode must be 'auto' or one of"):
        um.profile(one, a, d="cpu", mode=None)


@pytest.mark.parametrize("placements", ["cpu", [{"d": "cpu"}], {"cpu": "cpu"}, {1: {"d": "cpu"}}])
def test_compare_placements_must_be_a_mapping_of_mappings(monkeypatch, a, placements):
    monkeypatch.setattr("unimem.profiler.time_plain", _never)
    with pytest.raises(ArgumentTypeError, match=r"placements.*e\.g\. \{'all cpu'"):
        um.compare(one, a, placements=placements)


def test_profile_placement_must_be_a_mapping(a):
    with pytest.raises(ArgumentTypeError, match="placement must be a mapping of stream"):
        um.profile(one, a, placement="cpu")


MISSPELT = ["CPU", "cuda", "gpu0", "tpu", " cpu", "", "cpu ", "cpu\n"]


@pytest.mark.parametrize("name", MISSPELT)
@pytest.mark.parametrize("door", ["profile", "trace", "explore", "compare"])
def test_misspelt_stream_names_are_rejected_with_the_accepted_forms(monkeypatch, a, door, name):
    monkeypatch.setattr("unimem.profiler.time_plain", _never)
    with pytest.raises(ArgumentValueError) as info:
        if door == "profile":
            um.profile(one, a, d=name)
        elif door == "trace":
            um.trace(one, a, d=name)
        elif door == "explore":
            um.explore(one, a, d=name)
        else:
            um.compare(one, a, placements={"x": {"d": name}})
    text = str(info.value)
    assert "'d'" in text and repr(name) in text and "not a stream name" in text
    assert "'cpu', 'cpu:N'" in text and "mx.Stream" in text
    assert ("'gpu'" in text) == bool(mx.is_available(mx.gpu))


@pytest.mark.parametrize("fun", [
    one,
    lambda a, d: mx.exp(a, stream=d),
    lambda a, d=mx.cpu: mx.exp(a, stream=d),
], ids=["def", "lambda", "default"])
def test_stream_parameters_are_known_from_the_source(a, fun):
    with pytest.raises(ArgumentValueError, match="stream parameter 'd'"):
        bind(fun, (a, "gpu0"), {})  # positional too
    with pytest.raises(ArgumentTypeError, match="stream parameter 'd'"):
        bind(fun, (a,), {"d": 3})
    assert bind(fun, (a,), {"d": None}).kwargs == {"d": None}  # MLX's default stream


def test_with_mx_stream_marks_a_stream_parameter(a):
    def block(a, d):
        with mx.stream(d):
            return mx.exp(a)

    with pytest.raises(ArgumentValueError, match="stream parameter 'd'"):
        bind(block, (a,), {"d": "Cpu"})


def test_ordinary_strings_pass_through_untouched(a):
    call = bind(optioned, (a, "cpu"), {"d": "cpu:1"})
    assert call.args[1] == "cpu" and call.placement.names == {"d": "cpu:1"}
    call = bind(optioned, (a,), {"backend": "gpu", "d": "cpu"})
    assert call.kwargs["backend"] == "gpu"
    rec = um.profile(optioned, a, "cpu", d="cpu", repeat=1, warmup=0, trace=False)
    assert rec.placement == {"d": "cpu"}


def test_a_parameter_passed_on_to_a_helper_that_places_work_is_a_stream(a):
    def outer(a, d):
        return one(a, d)  # one() passes its d as stream=

    def by_name(a, place):
        return one(a, d=place)

    def twice(a, d):
        return outer(a, d)

    for f in (outer, by_name, twice):
        (param,) = {outer: ["d"], by_name: ["place"], twice: ["d"]}[f]
        assert bind(f, (a,), {param: "cpu:1"}).placement.names == {param: "cpu:1"}
        with pytest.raises(ArgumentValueError, match=f"stream parameter '{param}'"):
            bind(f, (a,), {param: "gpu0"})


def test_a_parameter_passed_where_the_source_cannot_tell_goes_by_its_value(a):
    helper = functools.partial(one)  # no source to read

    def outer(a, d):
        return helper(a, d)

    assert bind(outer, (a,), {"d": "cpu:1"}).placement.names == {"d": "cpu:1"}
    assert bind(outer, (a,), {"d": "gpu0"}).kwargs == {"d": "gpu0"}


@pytest.mark.parametrize("bandwidth,error", [
    (math.nan, ArgumentValueError), (math.inf, ArgumentValueError), (-math.inf, ArgumentValueError),
    (-1.0, ArgumentValueError), (0, ArgumentValueError), ("25e9", ArgumentTypeError),
    (None, ArgumentTypeError), (True, ArgumentTypeError),
])
def test_copy_tax_bandwidth_is_finite_and_positive(a, bandwidth, error):
    graph = um.trace(one, a, d="cpu")
    with pytest.raises(error, match="bandwidth must be a finite number above 0"):
        um.copy_tax(graph, bandwidth=bandwidth)


def test_copy_tax_rejects_what_is_not_a_graph_or_recording():
    with pytest.raises(ArgumentTypeError, match="Graph .* or a Recording"):
        um.copy_tax(None)


@pytest.mark.parametrize("door", [um.waits, um.critical_path])
def test_paths_need_a_recording(a, door):
    with pytest.raises(ArgumentTypeError, match="needs a Recording: a Graph .*um.profile"):
        door(um.trace(one, a, d="cpu"))
    with pytest.raises(ArgumentTypeError, match="needs a Recording .*got None"):
        door(None)


BAD_WATCH = [
    ({"window": 0}, ArgumentValueError), ({"window": 2.0}, ArgumentTypeError),
    ({"ui_hz": 0}, ArgumentValueError), ({"ui_hz": 61}, ArgumentValueError),
    ({"ui_hz": "4"}, ArgumentTypeError), ({"ui_hz": math.nan}, ArgumentValueError),
    ({"segment_size": 0}, ArgumentValueError), ({"segment_size": 1.5}, ArgumentTypeError),
    ({"segment_budget": -1}, ArgumentValueError), ({"segment_budget": math.inf}, ArgumentValueError),
    ({"memory_hz": 0}, ArgumentValueError), ({"memory_hz": None}, ArgumentTypeError),
    ({"memory": "yes"}, ArgumentTypeError), ({"display": None}, ArgumentTypeError),
    ({"title": 3}, ArgumentTypeError), ({"mode": 3}, ArgumentTypeError),
    ({"mode": "fast"}, ArgumentValueError), ({"registry": object()}, ArgumentTypeError),
]


@pytest.mark.parametrize("kwargs,error", BAD_WATCH, ids=[str(k) for k, _ in BAD_WATCH])
def test_watch_checks_every_argument_before_patching(a, kwargs, error):
    originals = {name: getattr(mx, name) for name in ("eval", "exp", "async_eval")}
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        um.watch(**{"display": False, **kwargs})
    assert {n: getattr(mx, n) for n in originals} == originals
    rec = um.profile(one, a, d="cpu", repeat=1, warmup=0, trace=False)  # nothing left over
    assert rec.timing is not None


@pytest.mark.parametrize("mode", ["segment", "native"])
def test_a_watch_that_fails_to_start_leaves_nothing_patched(monkeypatch, a, mode):
    if mode == "native" and not um.capture.native.available():
        pytest.skip(f"needs the native probe: {um.capture.native.why_unavailable()}")

    def failing(*args, **kwargs):
        raise RuntimeError("sampler failed")

    originals = {name: getattr(mx, name) for name in evalpoints._FUNCTIONS + ("exp",)}
    monkeypatch.setattr("unimem.watcher.MemorySampler", failing)
    w = um.watch(mode=mode, display=False)
    with pytest.raises(RuntimeError, match="sampler failed"), w:
        pass
    assert w.state == "failed"
    assert {n: getattr(mx, n) for n in originals} == originals
    rec = um.profile(one, a, d="cpu", repeat=1, warmup=0, trace=False, mode="segment")
    assert rec.timing is not None
