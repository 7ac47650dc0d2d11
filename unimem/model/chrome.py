"""Chrome Trace Event JSON: out to Perfetto / chrome://tracing, and back in.

Layout: ``pid`` is the device, ``tid`` the MLX stream index (lanes of unknown
stream take the next free tid, so each lane keeps its own thread); ``X`` slices are
ops, ``s``/``f`` flow pairs are cross-stream dependencies (each pair bound to the
middle of its two slices, so none is left unmatched), ``C`` counters carry the
allocator's memory, and ``M`` metadata names every process and thread. The full
recording (lanes, timing statistics, graph, notes) rides along under
``otherData.unimem`` so a saved trace loads back into a :class:`Recording`
without loss; each slice carries its op's ``calls`` as data in ``args`` (its
``name`` is only their label). Reading is chrome_load.py's: it checks every event
and field against the format, reads format 1 files (which stored the label alone)
and loads other Chrome traces too, as lanes of ``X`` slices.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, fields
from typing import Any

from .chrome_load import READABLE, from_chrome_trace
from .recording import Lane, Op, Recording

__all__ = ["FORMAT_VERSION", "READABLE", "from_chrome_trace", "to_chrome_trace"]

FORMAT_VERSION = 2  # 2: ops carry their calls; 1: only their display name
_PIDS = {"cpu": 1, "gpu": 2, "?": 3}
_MEMORY_PID = 4
_PROCESS_NAMES = {1: "CPU", 2: "GPU", 3: "untracked (stream unknown)",
                  _MEMORY_PID: "MLX allocator (global counters)"}


# a merged distributed job names its lanes "rank 1 · cpu": each rank is a process of its own
_RANK_LANE = re.compile(r"rank (\d+) · ")
_RANK_PID = 100


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def _threads(lanes: list[Lane]) -> dict[int, tuple[int, int]]:
    """Each lane's (pid, tid): its device and MLX stream index. A lane whose stream is
    unknown (imported, untracked), or whose thread another lane already has, takes the
    next free tid of its process, so no two lanes share a thread (and merge on load)."""
    out: dict[int, tuple[int, int]] = {}
    for lane in sorted(lanes, key=lambda x: x.stream_index < 0):  # known streams first
        rank = _RANK_LANE.match(lane.name)  # a merged job's lane: a process per rank
        pid = _RANK_PID + int(rank[1]) if rank else _PIDS.get(lane.device, 3)
        tid = max(lane.stream_index, 0)
        taken = [t for p, t in out.values() if p == pid]
        if tid in taken:
            tid = max(taken) + 1
        out[lane.id] = pid, tid
    return out


def to_chrome_trace(rec: Recording, path: str | os.PathLike[str] | None = None
                    ) -> dict[str, Any]:
    """The recording as Chrome Trace Event JSON, also written to ``path`` if given."""
    events: list[dict[str, Any]] = []
    where = _threads(rec.lanes)
    used_pids = sorted({pid for pid, _ in where.values()} | {_MEMORY_PID})
    for pid in used_pids:
        name = _PROCESS_NAMES.get(pid) or f"rank {pid - _RANK_PID}"
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                       "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                       "args": {"sort_index": pid}})
    for lane in rec.lanes:
        pid, tid = where[lane.id]
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": lane.label}})
    timed = {op.id: op for op in rec.ops if op.start is not None and op.end is not None}
    for op in timed.values():
        pid, tid = where[op.lane]
        start, end = _span(op)
        events.append({
            "ph": "X", "name": op.name, "cat": op.activity or "op", "pid": pid, "tid": tid,
            "ts": _us(start), "dur": _us(end - start),
            "args": {
                "id": op.id, "lane": op.lane, "submit_us": _us(op.submit),
                "dispatched_us": None if op.dispatched is None else _us(op.dispatched),
                "start": "measured" if op.start_measured else "derived", "end": "measured",
                "inputs": list(op.inputs), "shapes": [list(s) for s in op.shapes],
                "dtypes": list(op.dtypes), "nbytes": op.nbytes,
                "calls": [list(c) for c in op.calls], "detail": op.detail,
                **({"activity": op.activity} if op.activity else {}),
                **({"node": op.node} if op.node is not None else {}),
            },
        })
    for n, flow in enumerate(rec.flows):
        src, dst = timed.get(flow.src), timed.get(flow.dst)
        if src is None or dst is None:
            continue
        for ph, op in (("s", src), ("f", dst)):
            pid, tid = where[op.lane]
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
        **({"rank": rec.rank.to_dict()} if rec.rank is not None else {}),
    }
    trace = {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"unimem": meta}}
    if path is not None:
        # json.dumps, not json.dump: dump streams through the pure-Python encoder, five
        # times slower on 100,000 ops than the C encoder dumps uses for the whole string
        text = json.dumps(trace, separators=(",", ":"))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return trace


def _op_dict(op: Op) -> dict[str, Any]:
    return {f.name: getattr(op, f.name) for f in fields(Op)}


def _span(op: Op) -> tuple[float, float]:
    """Start and end of a timed op (one with both, as ``to_chrome_trace`` exports)."""
    assert op.start is not None and op.end is not None
    return op.start, op.end
