"""Recording.load checks a trace against the Trace Event Format, one test per fault.

Each fault was found by a reliability battery; before the checks, each trace here
was accepted as it was or failed with a bare TypeError/KeyError. Now every one
raises TraceFormatError (a UnimemError and a ValueError) whose message names the
event index, the field, the value given and what is accepted.
"""

from __future__ import annotations

import copy
import json
import pathlib

import pytest
from factory import make_recording

import unimem as um
from unimem.errors import TraceFormatError, UnimemError
from unimem.model.recording import Lane, Recording


def _trace() -> dict:
    """A valid unimem trace: two lanes, a cross-lane read, one untimed op."""
    rec = make_recording([(0, "exp", 0.0, 1e-3), (1, "sin", 1e-3, 2e-3, (0,)),
                          {"lane": 0, "calls": "add"}], memory=[(0.0, 8, 0, 8)])
    return json.loads(json.dumps(rec.to_chrome_trace()))


def _slice(trace: dict, op_id: int = 0) -> tuple[int, dict]:
    """The index in traceEvents of op ``op_id``'s slice, and the slice."""
    return next((i, e) for i, e in enumerate(trace["traceEvents"])
                if e["ph"] == "X" and e["args"]["id"] == op_id)


def _foreign() -> dict:
    return {"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 3, "args": {"name": "worker"}},
        {"ph": "X", "name": "a", "pid": 7, "tid": 3, "ts": 10, "dur": 5},
        {"ph": "X", "name": "b", "pid": 7, "tid": 4, "ts": 12, "dur": 1},
    ]}


def _fails(trace: object, *parts: str) -> TraceFormatError:
    with pytest.raises(TraceFormatError) as info:
        Recording.load(trace)  # type: ignore[arg-type]
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    return info.value


def test_the_error_is_a_unimem_error_and_a_value_error():
    assert issubclass(TraceFormatError, UnimemError) and issubclass(TraceFormatError, ValueError)
    assert um.TraceFormatError is TraceFormatError and "TraceFormatError" in um.__all__


# -- accepted before, wrongly --------------------------------------------------------
@pytest.mark.parametrize("foreign", [False, True])
def test_negative_dur_is_refused(foreign):
    trace = _foreign() if foreign else _trace()
    i, e = (2, trace["traceEvents"][2]) if foreign else _slice(trace)
    e["dur"] = -3
    err = _fails(trace, f"event {i} (ph 'X'", "dur is -3 (a int)", "accepted: a finite number >= 0")
    assert (err.event, err.field) == (i, "dur")


@pytest.mark.parametrize("foreign", [False, True])
def test_nan_ts_is_refused(foreign):
    trace = _foreign() if foreign else _trace()
    i, e = (1, trace["traceEvents"][1]) if foreign else _slice(trace)
    e["ts"] = float("nan")
    _fails(trace, f"event {i} ", "ts is nan (a float)", "accepted: a finite number")
    # NaN as JSON spells it, in a file
    assert "NaN" in json.dumps(trace)


def test_nan_in_a_file_is_refused(tmp_path):
    trace = _trace()
    _slice(trace)[1]["ts"] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(trace))
    _fails(path, "ts is nan")


def test_string_op_ids_are_refused_not_merged():
    trace = _trace()
    for op_id in (0, 1):
        _slice(trace, op_id)[1]["args"]["id"] = "x"
    i, _ = _slice(trace, "x")
    err = _fails(trace, f"event {i} ", "args.id is 'x' (a str)", "accepted: an integer >= 0")
    assert err.field == "args.id"


def test_duplicate_op_ids_are_refused_not_merged():
    trace = _trace()
    first, _ = _slice(trace, 0)
    second, e = _slice(trace, 1)
    e["args"]["id"] = 0
    _fails(trace, f"event {second} ", "args.id is 0", f"no other op has (event {first} ")


# -- paths ---------------------------------------------------------------------------
def test_load_takes_a_pathlib_path_like_to_chrome_trace(tmp_path):
    rec = make_recording([(0, "exp", 0.0, 1e-3)])
    path = tmp_path / "rec.json"
    rec.to_chrome_trace(path)
    back = Recording.load(path)  # raised TypeError before
    assert [op.calls for op in back.ops] == [op.calls for op in rec.ops]
    assert repr(Recording.load(str(path))) == repr(back)


# -- malformed files: bare TypeError / KeyError before -------------------------------
@pytest.mark.parametrize("content,parts", [
    ("null", ["the trace is None", "accepted: a path"]),
    ("42", ["the trace is 42 (a int)"]),
    ("[1, 2, 3]", ["event 0: the event is 1 (a int)", "accepted: a JSON object"]),
    ('{"events": []}', ["traceEvents is missing", "accepted: a JSON array"]),
    ('{"traceEvents": [{"name": "a"}]}', ["event 0 (ph None, name 'a'): ph is missing"]),
    ("{not json", ["is not JSON", "accepted: a Chrome trace"]),
])
def test_malformed_files_raise_trace_format_errors(tmp_path, content, parts):
    path = tmp_path / "bad.json"
    path.write_text(content)
    _fails(path, *parts)


@pytest.mark.parametrize("field,value", [("ts", "10"), ("dur", "5")])
@pytest.mark.parametrize("foreign", [False, True])
def test_string_times_are_refused(foreign, field, value):
    trace = _foreign() if foreign else _trace()
    i, e = (1, trace["traceEvents"][1]) if foreign else _slice(trace)
    e[field] = value
    _fails(trace, f"event {i} ", f"{field} is {value!r} (a str)", "accepted: a finite number")


def test_a_lane_out_of_range_is_refused():
    trace = _trace()
    i, e = _slice(trace, 1)
    e["args"]["lane"] = 5  # two lanes: 0 and 1
    _fails(trace, f"event {i} ", "args.lane is 5", "accepted: an integer from 0 to 1")


@pytest.mark.parametrize("tid", [2**63, 1.5, True, None])
def test_a_thread_out_of_range_is_refused(tid):
    trace = _foreign()
    trace["traceEvents"][2]["tid"] = tid
    _fails(trace, "event 2 ", "tid is", "accepted: an integer (signed, 64-bit) or a string")


def test_missing_metadata_fields_are_named():
    trace = _trace()
    del trace["otherData"]["unimem"]["lanes"][1]["device"]
    _fails(trace, "otherData.unimem.lanes[1]: device is missing; accepted: a string")
    trace = _trace()
    trace["otherData"]["unimem"]["flows"][0]["src"] = 9
    _fails(trace, "otherData.unimem.flows[0]: src is 9", "from 0 to 2")


def test_an_unknown_format_still_says_so():
    trace = _trace()
    trace["otherData"]["unimem"]["format"] = 99
    _fails(trace, "unknown unimem trace format 99", "accepted: 1 or 2")


# -- lanes never merge -------------------------------------------------------------
def test_a_foreign_trace_re_exported_keeps_its_threads_apart():
    rec = Recording.load(_foreign())
    assert [lane.name for lane in rec.lanes] == ["worker", "7/4"]
    trace = json.loads(json.dumps(rec.to_chrome_trace()))
    threads = {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] == "X"}
    assert len(threads) == 2  # both lanes were put on (3, 0) before
    named = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert sorted(named.values()) == ["7/4", "worker"] and set(named) == threads
    back = Recording.load(trace)
    assert back.lanes == rec.lanes and [o.lane for o in back.ops] == [o.lane for o in rec.ops]
    del trace["otherData"]  # read as any Chrome trace: still two lanes
    assert len(Recording.load(trace).lanes) == 2


def test_known_streams_keep_their_tid_and_unknown_ones_take_free_ones():
    rec = make_recording([(i, "exp", 0.0, 1.0) for i in range(4)],
                         lanes=("cpu", "cpu:1", Lane(2, "a", "?", -1), Lane(3, "b", "?", -1)))
    events = rec.to_chrome_trace()["traceEvents"]
    tids = {e["args"]["id"]: (e["pid"], e["tid"]) for e in events if e["ph"] == "X"}
    assert tids == {0: (1, 0), 1: (1, 1), 2: (3, 0), 3: (3, 1)}


# -- what a Recording cannot hold is said, not dropped or merged ---------------------
def test_events_a_recording_cannot_hold_are_noted():
    trace = _foreign()
    trace["traceEvents"] += [{"ph": "B", "name": "c", "pid": 7, "tid": 3, "ts": 20},
                             {"ph": "E", "pid": 7, "tid": 3, "ts": 21},
                             {"ph": "i", "name": "mark", "pid": 7, "tid": 3, "ts": 22}]
    rec = Recording.load(trace)
    assert len(rec.ops) == 2
    assert any("not loaded: 3 events" in n and "ph 'B' ×1, ph 'E' ×1, ph 'i' ×1" in n
               and "only complete slices" in n for n in rec.notes), rec.notes
    assert "not loaded: 3 events" in repr(rec)


def test_threads_of_one_name_stay_two_lanes():
    trace = {"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
        {"ph": "M", "name": "thread_name", "pid": 2, "tid": 1, "args": {"name": "main"}},
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0, "dur": 1},
        {"ph": "X", "name": "b", "pid": 2, "tid": 1, "ts": 1, "dur": 1},
    ]}
    rec = Recording.load(trace)
    assert [lane.name for lane in rec.lanes] == ["main", "main (2/1)"]
    assert rec.calls_by_lane() == {"main": {"a": 1}, "main (2/1)": {"b": 1}}
    assert any("'main' -> 'main (2/1)'" in n for n in rec.notes)


def test_duplicate_lane_names_in_a_unimem_trace_are_refused():
    trace = _trace()
    trace["otherData"]["unimem"]["lanes"][1]["name"] = "cpu"
    _fails(trace, "otherData.unimem.lanes[1]: name is 'cpu'", "no other lane has (lane 0")


def test_unexpected_events_in_a_unimem_trace_are_noted():
    trace = _trace()
    trace["traceEvents"].append({"ph": "i", "name": "mark", "ts": 0})
    rec = Recording.load(copy.deepcopy(trace))
    assert any("not loaded: 1 event a Recording" in n for n in rec.notes)


def test_a_valid_trace_still_loads_unchanged(tmp_path):
    trace = _trace()
    rec = Recording.load(trace)
    assert json.loads(json.dumps(rec.to_chrome_trace())) == trace
    path = pathlib.Path(tmp_path) / "again.json"
    rec.to_chrome_trace(path)
    assert json.loads(path.read_text()) == trace and rec.notes == []
