"""Property-based fuzzing of the Chrome trace round trip and of Recording.load's checks.

1. Any recording built with factory.make_recording from generated op specs comes
   back from to_chrome_trace + Recording.load unchanged (times to the format's
   resolution: 1 ns, as exported in microseconds with three decimals), and its
   lanes keep one thread each.
2. Arbitrary JSON-ish values, and valid traces with one part mutated, either load
   (and then render, re-export and load again) or raise TraceFormatError: never
   another exception type.

Reproducing a failure: Hypothesis prints the shrunk falsifying example and, with
``print_blob=True``, a ``@reproduce_failure("<version>", b"<blob>")`` line; paste
it above the failing test to replay that exact case. Runs are random; to repeat
a whole run, pass its seed: ``.venv/bin/python -m pytest tests/model/test_chrome_fuzz.py
--hypothesis-seed=1234`` (``--hypothesis-show-statistics`` shows what was tried).
No example database is kept (``database=None``); Hypothesis still caches constants
and Unicode tables in .hypothesis/, which ignores itself (its own .gitignore).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from factory import lane, make_recording
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unimem.errors import TraceFormatError
from unimem.model.graph import ArrayInfo, Graph, Node, StreamId
from unimem.model.recording import Lane, Op, Recording, Timing

FUZZ = settings(max_examples=200, deadline=None, print_blob=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
RESOLUTION = 2e-9  # seconds: the exported microseconds keep 3 decimals (1 ns), twice

names = st.text(max_size=6)
seconds = st.floats(0, 1e3, allow_nan=False, allow_infinity=False)
calls = st.one_of(names, st.lists(st.tuples(names, st.integers(1, 10**6)), min_size=1,
                                  max_size=3).map(tuple))


@st.composite
def lanes(draw: st.DrawFn) -> list[Lane]:
    """Recorder-style lanes, or foreign-style ones whose (device, stream) may collide."""
    if draw(st.booleans()):
        picked = draw(st.lists(st.sampled_from(["cpu", "cpu:1", "cpu:2", "gpu", "untracked"]),
                               min_size=1, max_size=4, unique=True))
        return [lane(i, name) for i, name in enumerate(picked)]
    picked = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    return [Lane(i, name, draw(st.sampled_from(["cpu", "gpu", "?"])),
                 draw(st.integers(-1, 3))) for i, name in enumerate(picked)]


@st.composite
def op_specs(draw: st.DrawFn, n_lanes: int) -> list[dict[str, Any]]:
    specs = []
    for i in range(draw(st.integers(0, 8))):
        start = draw(st.none() | seconds)
        end = draw(st.none() | seconds)
        if start is not None and end is not None and end < start:
            start, end = end, start
        specs.append({
            "lane": draw(st.integers(0, n_lanes - 1)), "calls": draw(calls),
            "submit": draw(seconds), "start": start, "end": end,
            "dispatched": draw(st.none() | seconds),
            "inputs": tuple(draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3))
                            if i else ()),
            "shapes": tuple(tuple(s) for s in draw(st.lists(
                st.lists(st.integers(0, 2**40), max_size=3), max_size=2))),
            "dtypes": tuple(draw(st.lists(names, max_size=2))),
            "nbytes": draw(st.integers(0, 2**62)), "start_measured": draw(st.booleans()),
            "detail": draw(names),
        })
    return specs


@st.composite
def recordings(draw: st.DrawFn) -> Recording:
    made = draw(lanes())
    rec = make_recording(draw(op_specs(len(made))), lanes=made, title=draw(names),
                         placement=draw(st.dictionaries(names, names, max_size=2)),
                         mode=draw(st.sampled_from(["segment", "op", "native", "watch"])),
                         method=draw(names),
                         memory=draw(st.lists(st.tuples(seconds, *[st.integers(0, 2**40)] * 3),
                                              max_size=3)))
    rec.notes = draw(st.lists(names, max_size=2))
    rec.platform = draw(st.dictionaries(names, names, max_size=2))
    rec.wall = draw(st.none() | seconds)
    if draw(st.booleans()):
        rec.timing = Timing(tuple(draw(st.lists(st.floats(1e-6, 10), min_size=1, max_size=4))),
                            draw(st.integers(0, 5)))
    return rec


def _close(a: float | None, b: float | None) -> bool:
    return a is None and b is None or (a is not None and b is not None
                                       and abs(a - b) <= RESOLUTION)


def _assert_same(rec: Recording, back: Recording) -> None:
    for name in ("title", "placement", "mode", "method", "lanes", "flows", "timing", "wall",
                 "platform", "notes", "graph"):
        assert getattr(back, name) == getattr(rec, name), name
    assert len(back.ops) == len(rec.ops) and len(back.memory) == len(rec.memory)
    for a, b in zip(rec.ops, back.ops):
        exact = ("id", "lane", "calls", "inputs", "shapes", "dtypes", "nbytes",
                 "start_measured", "detail")
        assert [getattr(b, f) for f in exact] == [getattr(a, f) for f in exact], a.id
        for f in ("submit", "start", "end", "dispatched"):
            assert _close(getattr(a, f), getattr(b, f)), (a.id, f, getattr(a, f), getattr(b, f))
    for s, t in zip(rec.memory, back.memory):
        assert _close(s.t, t.t) and (s.active, s.cache, s.peak) == (t.active, t.cache, t.peak)


@FUZZ
@given(recordings(), st.booleans())
def test_any_built_recording_round_trips_unchanged(tmp_path_factory, rec, via_file):
    if via_file:
        path = tmp_path_factory.mktemp("trace") / "rec.json"
        trace = rec.to_chrome_trace(path)
        back = Recording.load(path)
    else:
        trace = rec.to_chrome_trace()
        back = Recording.load(json.loads(json.dumps(trace)))
    _assert_same(rec, back)
    threads = [(e["pid"], e["tid"]) for e in trace["traceEvents"]
               if e["ph"] == "M" and e["name"] == "thread_name"]
    assert len(set(threads)) == len(rec.lanes)  # no two lanes share a thread
    assert _text(back) == _text(rec)


def _text(rec: Recording) -> list[str]:
    """The recording's text but its fidelity lines: a makespan of 0.4 ns may load as 0."""
    fidelity = {f"  {line}" for line in rec.fidelity_lines()}
    return [line for line in rec.lines() if line not in fidelity]


# -- garbage in: load or TraceFormatError, nothing else ------------------------------
KEYS = ["traceEvents", "otherData", "unimem", "ph", "ts", "dur", "pid", "tid", "name", "cat",
        "args", "id", "lane", "calls", "format", "lanes", "untimed_ops", "flows", "graph"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
           | st.sampled_from(["X", "M", "C", "B", "op", "MLX memory", "thread_name"]))
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), kids, max_size=4),
    max_leaves=24)


def _loads_or_refuses(trace: object) -> None:
    try:
        rec = Recording.load(trace)  # type: ignore[arg-type]
    except TraceFormatError as e:
        assert str(e)
        return
    repr(rec)  # what loads renders, re-exports and loads back
    Recording.load(json.loads(json.dumps(rec.to_chrome_trace())))


@FUZZ
@given(json_values)
def test_json_garbage_loads_or_raises_trace_format_error(value):
    if isinstance(value, str):  # a string is a path: wrap it, as a file would hold it
        value = [value]
    _loads_or_refuses(value)


def _rich() -> dict[str, Any]:
    """A trace that uses every part of the layout: graph, timing, flows, memory."""
    rec = make_recording([(0, "exp", 0.0, 1e-3), (1, (("sin", 2), ("add", 1)), 1e-3, 2e-3, (0,)),
                          {"lane": 2, "calls": "untracked", "start": 0.0},
                          Op(3, 0, "mul", 0.0, 2e-3, 3e-3, 1e-4, (1,), ((2, 2),), ("float32",),
                             16, True, "detail")],
                         lanes=("cpu", "gpu", "untracked"), memory=[(0.0, 8, 0, 8)])
    rec.timing, rec.wall, rec.notes = Timing((1e-3, 2e-3), 1), 4e-3, ["a note"]
    rec.graph = Graph("g", {"d1": "cpu"}, [
        Node(0, "Exp", StreamId("cpu", 0), "cpu", (0,), (1,), ("x",))],
        {0: ArrayInfo(0, "a", (2,), "float32", 8, "input"),
         1: ArrayInfo(1, "b", (2,), "float32", 8, "output", 0)}, (1,))
    return json.loads(json.dumps(rec.to_chrome_trace()))


RICH = _rich()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


PATHS = _paths(RICH)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete", "copy"]),
                          json_values), min_size=1, max_size=3))
def test_mutated_valid_traces_load_or_raise_trace_format_error(mutations):
    trace = copy.deepcopy(RICH)
    for path, how, value in mutations:
        parent: Any = trace
        for key in path[:-1]:
            if not isinstance(parent, (dict, list)) or key not in (
                    parent if isinstance(parent, dict) else range(len(parent))):
                break
            parent = parent[key]
        else:
            if not path:
                trace = value
                continue
            key = path[-1]
            if not isinstance(parent, (dict, list)) or key not in (
                    parent if isinstance(parent, dict) else range(len(parent))):
                continue
            if how == "set":
                parent[key] = value
            elif how == "delete":
                del parent[key]
            elif isinstance(parent, list):  # a repeated entry: two events, lanes, ops alike
                parent.append(copy.deepcopy(parent[key]))
    if isinstance(trace, str):
        trace = [trace]
    _loads_or_refuses(trace)


def test_the_rich_trace_itself_round_trips():
    rec = Recording.load(RICH)
    assert rec.graph is not None and rec.timing is not None and math.isclose(rec.wall, 4e-3)
    assert json.loads(json.dumps(rec.to_chrome_trace())) == RICH
