"""Chrome Trace Event JSON: out to Perfetto / chrome://tracing, and back in.

Layout: ``pid`` is the device, ``tid`` the MLX stream index; ``X`` slices are
ops, ``s``/``f`` flow pairs are cross-stream dependencies (each pair bound to the
middle of its two slices, so none is left unmatched), ``C`` counters carry the
allocator's memory, and ``M`` metadata names every process and thread. The full
recording (lanes, timing statistics, graph, notes) rides along under
``otherData.unimem`` so a saved trace loads back into a :class:`Recording`
without loss; each slice carries its op's ``calls`` as data in ``args`` (its
``name`` is only their label). Format 1 files, which stored the label alone, are
read by parsing it once here; other Chrome traces load too, as lanes of ``X`` slices.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from .graph import Graph
from .recording import Calls, Flow, Lane, MemorySample, Op, Recording, Timing

FORMAT_VERSION = 2  # 2: ops carry their calls; 1: only their display name
_READABLE = (1, 2)
_PIDS = {"cpu": 1, "gpu": 2, "?": 3}
_MEMORY_PID = 4
_PROCESS_NAMES = {1: "CPU", 2: "GPU", 3: "untracked (stream unknown)",
                  _MEMORY_PID: "MLX allocator (global counters)"}


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def _where(lane: Lane) -> tuple[int, int]:
    return _PIDS.get(lane.device, 3), max(lane.stream_index, 0)


def to_chrome_trace(rec: Recording, path: str | None = None) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    used_pids = sorted({_where(lane)[0] for lane in rec.lanes} | {_MEMORY_PID})
    for pid in used_pids:
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                       "args": {"name": _PROCESS_NAMES[pid]}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                       "args": {"sort_index": pid}})
    for lane in rec.lanes:
        pid, tid = _where(lane)
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": lane.label}})
    lanes = {lane.id: lane for lane in rec.lanes}
    timed = {op.id: op for op in rec.ops if op.start is not None and op.end is not None}
    for op in timed.values():
        pid, tid = _where(lanes[op.lane])
        start, end = _span(op)
        events.append({
            "ph": "X", "name": op.name, "cat": "op", "pid": pid, "tid": tid,
            "ts": _us(start), "dur": _us(end - start),
            "args": {
                "id": op.id, "lane": op.lane, "submit_us": _us(op.submit),
                "dispatched_us": None if op.dispatched is None else _us(op.dispatched),
                "start": "measured" if op.start_measured else "derived", "end": "measured",
                "inputs": list(op.inputs), "shapes": [list(s) for s in op.shapes],
                "dtypes": list(op.dtypes), "nbytes": op.nbytes,
                "calls": [list(c) for c in op.calls], "detail": op.detail,
            },
        })
    for n, flow in enumerate(rec.flows):
        src, dst = timed.get(flow.src), timed.get(flow.dst)
        if src is None or dst is None:
            continue
        for ph, op in (("s", src), ("f", dst)):
            pid, tid = _where(lanes[op.lane])
            mid = sum(_span(op)) / 2
            event = {"ph": ph, "id": n, "name": flow.kind, "cat": "dependency", "pid": pid,
                     "tid": tid, "ts": _us(mid), "args": {"nbytes": flow.nbytes}}
            if ph == "f":
                event["bp"] = "e"
            events.append(event)
    for s in rec.memory:
        events.append({"ph": "C", "name": "MLX memory", "pid": _MEMORY_PID, "tid": 0,
                       "ts": _us(s.t), "args": {"active": s.active, "cache": s.cache,
                                                "peak": s.peak}})
    meta = {
        "format": FORMAT_VERSION, "title": rec.title, "placement": rec.placement,
        "mode": rec.mode, "method": rec.method, "platform": rec.platform,
        "notes": rec.notes, "wall": rec.wall,
        "timing": None if rec.timing is None else {"samples": list(rec.timing.samples),
                                                   "warmup": rec.timing.warmup},
        "lanes": [asdict(lane) for lane in rec.lanes],
        "flows": [asdict(f) for f in rec.flows],
        "untimed_ops": [_op_dict(op) for op in rec.ops if op.id not in timed],
        "graph": None if rec.graph is None else rec.graph.to_dict(),
    }
    trace = {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"unimem": meta}}
    if path is not None:
        with open(path, "w") as f:
            json.dump(trace, f)
    return trace


def _op_dict(op: Op) -> dict[str, Any]:
    return {f.name: getattr(op, f.name) for f in fields(Op)}


def _calls(stored: list[list[Any]]) -> Calls:
    return tuple((str(kind), int(k)) for kind, k in stored)


def _calls_from_name(name: str) -> Calls:
    """A format 1 op's calls, from the label that was all it stored: "exp ×2 + sin ×2"."""
    out = []
    for part in name.split(" + "):
        kind, _, k = part.partition(" ×")
        out.append((kind, int(k)) if k.isdigit() else (part, 1))
    return tuple(out)


def _span(op: Op) -> tuple[float, float]:
    """Start and end of a timed op (one with both, as ``to_chrome_trace`` exports)."""
    assert op.start is not None and op.end is not None
    return op.start, op.end


def from_chrome_trace(source: str | dict[str, Any]) -> Recording:
    """A Recording from a trace file path or an already-parsed trace."""
    if isinstance(source, str):
        with open(source) as f:
            trace = json.load(f)
    else:
        trace = source
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    meta = trace.get("otherData", {}).get("unimem") if isinstance(trace, dict) else None
    if meta is None:
        return _foreign(events)
    if meta.get("format") not in _READABLE:
        raise ValueError(f"unknown unimem trace format {meta.get('format')!r}")
    rec = Recording(meta["title"], dict(meta["placement"]), meta["mode"], meta["method"],
                    platform=dict(meta["platform"]), notes=list(meta["notes"]),
                    wall=meta["wall"])
    rec.lanes = [Lane(**lane) for lane in meta["lanes"]]
    ops: dict[int, Op] = {}
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "op":
            a = e["args"]
            calls = _calls(a["calls"]) if "calls" in a else _calls_from_name(e["name"])
            ops[a["id"]] = Op(
                a["id"], a["lane"], calls, a["submit_us"] / 1e6, e["ts"] / 1e6,
                (e["ts"] + e["dur"]) / 1e6,
                None if a["dispatched_us"] is None else a["dispatched_us"] / 1e6,
                tuple(a["inputs"]), tuple(tuple(s) for s in a["shapes"]), tuple(a["dtypes"]),
                a["nbytes"], a["start"] == "measured", a["detail"])
        elif e.get("ph") == "C" and e.get("name") == "MLX memory":
            a = e["args"]
            rec.memory.append(MemorySample(e["ts"] / 1e6, a["active"], a["cache"], a["peak"]))
    for d in meta["untimed_ops"]:
        d = {**d, "inputs": tuple(d["inputs"]), "dtypes": tuple(d["dtypes"]),
             "shapes": tuple(tuple(s) for s in d["shapes"])}
        if "calls" in d:
            d["calls"] = _calls(d["calls"])
        else:  # format 1
            d["calls"] = _calls_from_name(d.pop("name"))
            del d["count"]
        ops[d["id"]] = Op(**d)
    rec.ops = [ops[i] for i in sorted(ops)]
    rec.flows = [Flow(**f) for f in meta["flows"]]
    if meta["timing"] is not None:
        rec.timing = Timing(tuple(meta["timing"]["samples"]), meta["timing"]["warmup"])
    if meta["graph"] is not None:
        rec.graph = Graph.from_dict(meta["graph"])
    return rec


def _foreign(events: list[dict[str, Any]]) -> Recording:
    """Any Chrome trace: one lane per (pid, tid), one op per complete slice."""
    names = {(e["pid"], e.get("tid", 0)): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    rec = Recording("imported trace", {}, "imported",
                    "imported from a Chrome trace: times as the file gives them")
    lane_of: dict[tuple[int, int], int] = {}
    slices = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])
    for e in slices:
        key = (e.get("pid", 0), e.get("tid", 0))
        if key not in lane_of:
            lane_of[key] = len(rec.lanes)
            rec.lanes.append(Lane(len(rec.lanes), names.get(key, f"{key[0]}/{key[1]}"), "?", -1))
        start = e["ts"] / 1e6
        rec.ops.append(Op(len(rec.ops), lane_of[key], ((e.get("name", "?"), 1),), start, start,
                          start + e.get("dur", 0) / 1e6, start_measured=True))
    return rec
