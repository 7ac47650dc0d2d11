import json

import mlx.core as mx
import pytest

import unimem as um


def _pair(a, b, s1, s2):
    c = mx.add(a, b, stream=s1)
    return mx.add(a, c, stream=s2) * 2


def test_trace_layout(tmp_path):
    a = mx.ones((32, 32))
    p = um.profile(_pair, a, a, s1="cpu:1", s2="cpu:2", repeat=2, mode="segment")
    path = tmp_path / "t.json"
    trace = p.to_chrome_trace(str(path))
    assert json.loads(path.read_text()) == json.loads(json.dumps(trace))
    events = trace["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == len(p.ops) == 3
    devices = {"cpu", mx.default_device().type.name}  # `* 2` runs on the default device
    assert {e["pid"] for e in slices} == {{"cpu": 1, "gpu": 2}[d] for d in devices}
    assert {e["tid"] for e in slices} == {lane.stream_index for lane in p.lanes}  # tid = stream
    assert all(e["args"]["start"] == "derived" and e["args"]["end"] == "measured"
               for e in slices)
    # every flow start has its finish, each bound inside its slice
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    finishes = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts.keys() == finishes.keys() and len(starts) == len(p.flows) == 2
    for fid, s in starts.items():
        f = finishes[fid]
        assert f["bp"] == "e"
        for ev in (s, f):
            enclosing = [x for x in slices if x["tid"] == ev["tid"]
                         and x["ts"] <= ev["ts"] <= x["ts"] + x["dur"]]
            assert enclosing, "flow endpoint not inside a slice"
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {lane.label for lane in p.lanes} == names
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and set(counters[0]["args"]) == {"active", "cache", "peak"}


def test_round_trip_is_lossless(tmp_path, fun, ab):
    p = um.profile(fun, *ab, d1="cpu", d2="cpu:1", repeat=2)
    path = tmp_path / "fun.json"
    p.to_chrome_trace(str(path))
    q = um.Recording.load(str(path))
    assert repr(q) == repr(p)
    assert [(o.id, o.lane, o.calls, o.inputs, o.shapes, o.node) for o in q.ops] == [
        (o.id, o.lane, o.calls, o.inputs, o.shapes, o.node) for o in p.ops]
    for a, b in zip(p.ops, q.ops):
        assert abs(a.start - b.start) < 1e-6 and abs(a.end - b.end) < 1e-6
    assert q.flows == p.flows and len(q.memory) == len(p.memory)
    assert repr(q.graph) == repr(p.graph)


def test_foreign_trace_loads():
    trace = {"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 3, "args": {"name": "worker"}},
        {"ph": "X", "name": "a", "pid": 7, "tid": 3, "ts": 10, "dur": 5},
        {"ph": "X", "name": "b", "pid": 7, "tid": 4, "ts": 12, "dur": 1},
    ]}
    r = um.Recording.load(trace)
    assert [lane.name for lane in r.lanes] == ["worker", "7/4"]
    assert r.ops[0].end - r.ops[0].start == pytest.approx(5e-6)


def _mixed() -> um.Recording:
    """A segment of two kinds, a one-call op, untracked arrays, and one op never run."""
    rec = um.Recording("mixed", {}, "segment", "built by hand")
    rec.lanes += [um.Lane(0, "cpu", "cpu", 0), um.Lane(1, "untracked", "?", -1)]
    rec.ops += [
        um.Op(0, 1, (("untracked", 1),), 0.0, 0.0, 1e-3),
        um.Op(1, 0, (("ones", 1), ("exp", 3)), 0.0, 1e-3, 2e-3, inputs=(0,)),
        um.Op(2, 0, "matmul", 1e-3, 2e-3, 3e-3, inputs=(1,)),
        um.Op(3, 0, (("exp", 50),), 2e-3),
    ]
    return rec


def test_calls_round_trip_as_data():
    rec = _mixed()
    trace = rec.to_chrome_trace()
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["args"]["calls"] for e in slices] == [
        [["untracked", 1]], [["ones", 1], ["exp", 3]], [["matmul", 1]]]
    assert [e["name"] for e in slices] == ["untracked ×1", "ones ×1 + exp ×3", "matmul"]
    back = um.Recording.load(json.loads(json.dumps(trace)))
    assert [op.calls for op in back.ops] == [op.calls for op in rec.ops]
    assert [op.name for op in back.ops] == [op.name for op in rec.ops]
    assert back.ops[3].end is None and back.ops[3].count == 50


def test_format_1_files_load_their_calls_from_the_names():
    trace = json.loads(json.dumps(_mixed().to_chrome_trace()))
    meta = trace["otherData"]["unimem"]
    meta["format"] = 1  # what format 1 wrote: names and counts, no calls
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            e["args"]["count"] = sum(k for _, k in e["args"].pop("calls"))
    for d in meta["untimed_ops"]:
        calls = d.pop("calls")
        d["name"] = " + ".join(f"{kind} ×{k}" for kind, k in calls)
        d["count"] = sum(k for _, k in calls)
    back = um.Recording.load(trace)
    assert [op.calls for op in back.ops] == [op.calls for op in _mixed().ops]
    assert back.calls_by_lane() == _mixed().calls_by_lane()
    meta["format"] = 99
    with pytest.raises(ValueError, match="unknown unimem trace format 99"):
        um.Recording.load(trace)


def test_kernels_and_copies_round_trip():
    """CUPTI's kernels and copies are slices in their own category: they load back."""
    rec = um.Recording("k", {}, "native", "built by hand")
    rec.lanes += [um.Lane(0, "gpu", "gpu", 0), um.Lane(1, "gpu copies", "gpu", -1)]
    rec.ops += [
        um.Op(0, 0, "Exp", 0.0, start=0.0, end=1e-6, start_measured=True, activity="kernel",
              detail="kernel cu::unary_v<Exp>"),
        um.Op(1, 0, (("Exp", 0),), 1e-6, start=1e-6, end=2e-6, start_measured=True,
              activity="kernel", detail="kernel reduce (2 of 2 of this Exp)"),
        um.Op(2, 1, "memcpy", 1e-6, start=2e-6, end=3e-6, start_measured=True, nbytes=64,
              activity="memcpy", detail="memcpy device to host"),
    ]
    trace = rec.to_chrome_trace()
    assert sorted(e["cat"] for e in trace["traceEvents"] if e["ph"] == "X") == [
        "kernel", "kernel", "memcpy"]
    q = um.Recording.load(trace)
    assert repr(q) == repr(rec) and not any("not loaded" in n for n in q.notes)
    assert [(o.activity, o.detail, o.nbytes) for o in q.ops] == [
        (o.activity, o.detail, o.nbytes) for o in rec.ops]
