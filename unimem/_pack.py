"""Pack recordings into one compact binary payload plus a small JSON meta.

The timeline widget must draw 100,000 ops without shipping 100,000 JSON objects,
so ops, flows and memory samples travel as columns of numbers (one bytes buffer,
laid out in ``meta["arrays"]``) and every text (op names, shapes) as an index
into one string table. Only the ``window`` most recent ops of each recording are
packed, and the work is proportional to that window, not to the recording: a
live watch re-packs many times a second while its recording keeps growing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._recording import Op, Recording, fmt_time

FLOW_KINDS = ("cross stream", "device switch", "untracked")
START_MEASURED, IN_FLIGHT = 1, 2  # bits of the per-op flags column
_MEMORY_PER_OP = 4  # memory samples kept per windowed op (tail of the list)


@dataclass
class Packed:
    """What the widget is sent, and what Python needs to map op ids to bars."""

    meta: dict[str, Any]
    payload: bytes
    index: list[dict[int, int]] = field(default_factory=list)  # per recording: op id -> bar

    def bar_of(self, recording: int, op_ids: Sequence[int]) -> list[int]:
        """Bar indices of the given ops that are in the window (others are skipped)."""
        ids = self.index[recording]
        return [ids[i] for i in op_ids if i in ids]


class _Columns:
    """Growing columns, written out as one buffer with an offset table."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {}
        self.dtypes: dict[str, str] = {}

    def add(self, name: str, dtype: str, values: Sequence[Any]) -> None:
        self.cols.setdefault(name, []).extend(values)
        self.dtypes[name] = dtype

    def pack(self) -> tuple[bytes, dict[str, list[Any]]]:
        # widest types first, so every column starts aligned to its element size
        order = sorted(self.cols, key=lambda n: -np.dtype(self.dtypes[n]).itemsize)
        parts, layout, offset = [], {}, 0
        for name in order:
            arr = np.asarray(self.cols[name], dtype=self.dtypes[name])
            layout[name] = [offset, len(arr), self.dtypes[name]]
            parts.append(arr.tobytes())
            offset += arr.nbytes
        return b"".join(parts), layout


class _Strings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self._ids: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        i = self._ids.get(text)
        if i is None:
            i = self._ids[text] = len(self.items)
            self.items.append(text)
        return i


def _info(op: Op) -> str:
    """Shape, dtype and call count in words, for the tooltip."""
    shapes = ", ".join(f"{tuple(s)} {d}" for s, d in zip(op.shapes, op.dtypes))
    calls = f"{op.count} MLX calls" if op.count > 1 else ""
    return "; ".join(x for x in (shapes, calls, op.detail) if x)


def starts_label(ops: Sequence[Op]) -> str:
    measured = sum(op.start_measured for op in ops)
    if measured == len(ops):
        return "measured starts"
    return "derived starts" if measured == 0 else "derived and measured starts"


def fidelity_lines(rec: Recording) -> list[str]:
    """How the recording was made and what looking cost (shown above its lanes)."""
    lines = [rec.method]
    if rec.wall is not None and rec.overhead is not None:
        lines.append(f"instrumented run {fmt_time(rec.wall)} = {rec.overhead:.2f}× "
                     "the plain median")
    if rec.makespan is not None:
        gap = rec.makespan_gap
        lines.append(f"timeline makespan {fmt_time(rec.makespan)}"
                     + (f" = {gap:.2f}× the plain median" if gap else ""))
    return lines


def pack(recordings: Sequence[Recording], labels: Sequence[str], window: int) -> Packed:
    """Columns of every recording's last ``window`` ops, flows between them, memory."""
    cols, strings = _Columns(), _Strings()
    meta: dict[str, Any] = {"recordings": [], "lanes": [], "flow_kinds": list(FLOW_KINDS)}
    index: list[dict[int, int]] = []
    n_ops = n_flows = n_mem = 0
    now = 0.0
    for r, (rec, label) in enumerate(zip(recordings, labels)):
        ops = rec.ops[-window:] if window < len(rec.ops) else rec.ops
        rows = {}
        for lane in rec.lanes:
            rows[lane.id] = len(meta["lanes"])
            meta["lanes"].append({"recording": r, "lane": lane.id, "name": lane.name,
                                  "label": lane.label, "device": lane.device})
        ids = {op.id: n_ops + i for i, op in enumerate(ops)}
        index.append(ids)
        starts, ends = [], []
        for op in ops:
            start = op.start if op.start is not None else _fallback_start(op)
            starts.append(start)
            ends.append(math.nan if op.end is None else op.end)
        in_flight = sum(op.end is None for op in ops)
        cols.add("start", "f8", starts)
        cols.add("end", "f8", ends)
        cols.add("nbytes", "f8", [op.nbytes for op in ops])
        cols.add("row", "i4", [rows[op.lane] for op in ops])
        cols.add("name", "i4", [strings(op.name) for op in ops])
        cols.add("info", "i4", [strings(_info(op)) for op in ops])
        cols.add("id", "i4", [op.id for op in ops])
        cols.add("flags", "u1", [(START_MEASURED if op.start_measured else 0)
                                 | (IN_FLIGHT if op.end is None else 0) for op in ops])
        flows = _window_flows(rec, ids)
        cols.add("flow_src", "i4", [ids[f.src] for f in flows])
        cols.add("flow_dst", "i4", [ids[f.dst] for f in flows])
        cols.add("flow_kind", "u1", [_flow_kind(f.kind) for f in flows])
        t_min = min(starts) if ops and len(ops) < len(rec.ops) else -math.inf
        mem = sorted((m for m in rec.memory[-_MEMORY_PER_OP * window:] if m.t >= t_min),
                     key=lambda m: m.t)
        for name in ("t", "active", "cache", "peak"):
            cols.add(f"mem_{name}", "f8", [getattr(m, name) for m in mem])
        known = [e for e in ends if not math.isnan(e)] + starts + [m.t for m in mem[-1:]]
        now = max([now, *known])
        meta["recordings"].append({
            "label": label, "title": rec.title, "mode": rec.mode,
            "placement": ", ".join(f"{k}={v}" for k, v in rec.placement.items()),
            "lines": fidelity_lines(rec), "starts": starts_label(ops) if ops else "",
            "ops_total": len(rec.ops), "ops": [n_ops, len(ops)], "in_flight": in_flight,
            "flows": [n_flows, len(flows)], "memory": [n_mem, len(mem)],
        })
        n_ops, n_flows, n_mem = n_ops + len(ops), n_flows + len(flows), n_mem + len(mem)
    payload, meta["arrays"] = cols.pack()
    meta.update(strings=strings.items, n_ops=n_ops, n_flows=n_flows, n_memory=n_mem, now=now)
    return Packed(meta, payload, index)


def _window_flows(rec: Recording, ids: dict[int, int]) -> list[Any]:
    """Flows with both ends shown; flows are appended in op order, so read the tail."""
    out: list[Any] = []
    first = min(ids, default=0)
    for f in reversed(rec.flows):
        if f.dst not in ids:
            if f.dst < first:
                break
            continue
        if f.src in ids:
            out.append(f)
    out.reverse()
    return out


def _fallback_start(op: Op) -> float:
    """An op whose start is not derived yet (in flight): its hand-off, a lower bound."""
    return op.submit


def _flow_kind(kind: str) -> int:
    return FLOW_KINDS.index(kind) if kind in FLOW_KINDS else 0
