"""Pack recordings into one compact binary payload plus a small JSON meta.

The timeline widget must draw 100,000 ops without shipping 100,000 JSON objects,
so ops, flows and memory samples travel as columns of numbers (one bytes buffer,
laid out in ``meta["arrays"]``) and every text (op names, shapes) as an index
into one string table. Only the ``window`` most recent ops of each recording are
packed, and the work is proportional to that window, not to the recording: a
live watch re-packs many times a second while its recording keeps growing.

The meta carries data, not display text: counts, times in seconds and kind names;
widgets/timeline.js picks the words and colours (its header documents the wire).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypedDict

import numpy as np

from ..analysis.gpu import gpu_activity
from ..model.recording import Flow, Op, Recording

# "rank 1 · cpu": the lanes of one rank of a merged distributed job, drawn as a group
_RANK_LANE = re.compile(r"(rank \d+) · ")

START_MEASURED, IN_FLIGHT = 1, 2  # bits of the per-op flags column
_MEMORY_PER_OP = 4  # at most this many memory samples per windowed op
_STRAGGLERS = 64  # out-of-order samples tolerated before the window's start


class LaneMeta(TypedDict):
    recording: int  # index into Meta.recordings
    lane: int  # the lane's id in its recording
    group: str  # "rank 1" for a merged job's lanes (folded together in the widget), else ""
    name: str
    label: str
    device: str  # "cpu", "gpu", or "?" for work unimem cannot place


class TimingMeta(TypedDict):
    """What looking cost: the instrumented run's wall time and the timeline's makespan
    (None when unknown), to be compared with the median of the plain runs."""

    plain_median: float
    wall: float | None
    makespan: float | None


class GpuMeta(TypedDict):
    """How busy the GPU was (analysis/gpu.py), in seconds: busy of the kernels' span."""

    kernels: int
    busy: float
    span: float
    host_bound: bool


class RecordingMeta(TypedDict):
    label: str
    title: str
    placement: dict[str, str]  # stream parameter -> device, in the recording's order
    method: str  # how the recording was made
    gpu: GpuMeta | None  # where CUPTI timed kernels, else None
    timing: TimingMeta | None  # None: no plain runs to compare with (live or loaded)
    ops_total: int  # ops in the recording; only the window's are packed
    ops: list[int]  # [first bar, count] in the op columns
    measured_starts: int  # ops in the window whose start was measured (others derived)
    in_flight: int  # ops in the window without an end yet
    flows: list[int]  # [first, count] in the flow columns
    memory: list[int]  # [first, count] in the mem_* columns


class Meta(TypedDict):
    recordings: list[RecordingMeta]
    lanes: list[LaneMeta]  # in row order: a recording's lanes after the previous one's
    flow_kinds: list[str]  # names of the flow kinds the flow_kind column indexes
    strings: list[str]  # the texts the name and info columns index
    arrays: dict[str, list[Any]]  # column -> [byte offset, length, dtype]
    n_ops: int
    n_flows: int
    n_memory: int
    now: float  # the latest time seen: bars still in flight are drawn up to it


@dataclass
class Packed:
    """What the widget is sent, and what Python needs to map op ids to bars."""

    meta: Meta
    payload: bytes
    index: list[dict[int, int]] = field(default_factory=list)  # per recording: op id -> bar

    def bar_of(self, recording: int, op_ids: Sequence[int]) -> list[int]:
        """Bar indices of the given ops that are in the window (others are skipped)."""
        ids = self.index[recording]
        return [ids[i] for i in op_ids if i in ids]


class _Columns:
    """Growing columns, written out as one buffer with an offset table."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {}
        self.dtypes: dict[str, str] = {}

    def add(self, name: str, dtype: str, values: Any) -> None:
        self.cols.setdefault(name, []).append(np.asarray(values, dtype=dtype))
        self.dtypes[name] = dtype

    def compact_strings(self, table: list[str], names: Sequence[str]) -> list[str]:
        """Renumber the string columns ``names`` to the texts they use; those texts."""
        ids = [np.concatenate(self.cols[n]).astype(np.intp) for n in names]
        used = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.intp)
        for n, col in zip(names, ids):
            self.cols[n] = [np.searchsorted(used, col)]
        return [table[i] for i in used]

    def pack(self) -> tuple[bytes, dict[str, list[Any]]]:
        # widest types first, so every column starts aligned to its element size
        order = sorted(self.cols, key=lambda n: -np.dtype(self.dtypes[n]).itemsize)
        parts, layout, offset = [], {}, 0
        for name in order:
            arr = np.concatenate(self.cols[name]).astype(self.dtypes[name], copy=False)
            layout[name] = [offset, len(arr), self.dtypes[name]]
            parts.append(arr.tobytes())
            offset += arr.nbytes
        return b"".join(parts), layout


class _Strings:
    """One table of texts; ops repeat a few names and shapes many times over."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._ids: dict[str, int] = {}
        self._info: dict[tuple[Any, ...], int] = {}

    def __call__(self, text: str) -> int:
        i = self._ids.get(text)
        if i is None:
            i = self._ids[text] = len(self.items)
            self.items.append(text)
        return i

    def info(self, op: Op) -> int:
        key = (op.shapes, op.dtypes, op.count, op.detail)
        i = self._info.get(key)
        if i is None:
            i = self._info[key] = self(_info(key))
        return i


def _info(key: tuple[Any, ...]) -> str:
    """Shape, dtype and call count in words, for the tooltip."""
    shapes, dtypes, count, detail = key
    text = ", ".join(f"{tuple(s)} {d}" for s, d in zip(shapes, dtypes))
    calls = f"{count} MLX calls" if count > 1 else ""
    return "; ".join(x for x in (text, calls, detail) if x)


def _gpu(rec: Recording) -> GpuMeta | None:
    """The GPU's busy and idle time over the whole recording, where it has kernels."""
    if not any(op.activity == "kernel" for op in rec.ops):
        return None
    act = gpu_activity(rec)
    return {"kernels": act.kernels, "busy": act.busy, "span": act.span,
            "host_bound": act.host_bound}


def _timing(rec: Recording) -> TimingMeta | None:
    """What looking cost, when plain runs were timed (else None, and no O(n) makespan scan)."""
    if rec.timing is None:
        return None
    return {"plain_median": rec.timing.median, "wall": rec.wall, "makespan": rec.makespan}


_OP_COLUMNS = (("start", "f8"), ("end", "f8"), ("nbytes", "f8"), ("row", "i4"),
               ("name", "i4"), ("info", "i4"), ("id", "i4"), ("flags", "u1"))
_ROW = [name for name, _ in _OP_COLUMNS].index("row")  # lane id until mapped to a row
_FLAGS = [name for name, _ in _OP_COLUMNS].index("flags")


class PackCache:
    """Rows of settled ops (start and end known) from earlier packs.

    A live view re-packs mostly the same ops several times a second; a settled
    op's row is reused while its start and end are unchanged (anything else is
    rebuilt). Its string ids refer to ``strings``, kept with it.
    """

    def __init__(self) -> None:
        self.strings = _Strings()
        self.rows: dict[int, dict[int, tuple[float, ...]]] = {}  # recording -> op id -> row

    def table(self, r: int, ops: Sequence[Op]) -> np.ndarray:
        """One row per op, one column per entry of ``_OP_COLUMNS`` (lane id in ``_ROW``)."""
        store = self.rows.setdefault(r, {})
        if len(store) > 2 * len(ops) + 1024:  # forget ops that left the window
            keep = {op.id for op in ops}
            store = self.rows[r] = {i: row for i, row in store.items() if i in keep}
        get, name, info, nan = store.get, self.strings, self.strings.info, math.nan

        def row(op: Op) -> tuple[float, ...]:
            start, end = op.start, op.end
            cached = get(op.id)
            if cached is not None and cached[0] == start and cached[1] == end:
                return cached
            new = (start if start is not None else _fallback_start(op),
                   nan if end is None else end, op.nbytes, op.lane, name(op.name), info(op),
                   op.id,
                   (START_MEASURED if op.start_measured else 0) | (IN_FLIGHT if end is None else 0))
            if start is not None and end is not None:
                store[op.id] = new
            return new

        width = len(_OP_COLUMNS)
        flat = np.fromiter(chain.from_iterable(map(row, ops)), dtype="f8",
                           count=len(ops) * width)
        return flat.reshape(len(ops), width)


def pack(recordings: Sequence[Recording], labels: Sequence[str], window: int,
         cache: PackCache | None = None) -> Packed:
    """Columns of every recording's last ``window`` ops, flows between them, memory.

    ``cache`` (kept by a widget across refreshes) reuses the rows of settled ops.
    """
    cols, cache = _Columns(), cache or PackCache()
    recs: list[RecordingMeta] = []
    lanes: list[LaneMeta] = []
    kinds: dict[str, int] = {}  # flow kind -> its index in the flow_kind column
    index: list[dict[int, int]] = []
    n_ops = n_flows = n_mem = 0
    now = 0.0
    for r, (rec, label) in enumerate(zip(recordings, labels)):
        # ops before lanes: a live recorder appends an op's lane before the op itself
        total = len(rec.ops)
        ops = rec.ops[max(0, total - window):total]
        rows = {}
        for lane in list(rec.lanes):
            rows[lane.id] = len(lanes)
            rank = _RANK_LANE.match(lane.name)  # a merged job's lanes: a group per rank
            lanes.append({"recording": r, "lane": lane.id, "name": lane.name,
                          "label": lane.label, "device": lane.device,
                          "group": rank[1] if rank else ""})
        ids = {op.id: n_ops + i for i, op in enumerate(ops)}
        index.append(ids)
        table = cache.table(r, ops)
        lane_row = np.full(max(rows, default=0) + 1, -1.0)
        lane_row[list(rows)] = list(rows.values())
        table[:, _ROW] = lane_row[table[:, _ROW].astype(np.intp)]
        for k, (name, dtype) in enumerate(_OP_COLUMNS):
            cols.add(name, dtype, table[:, k])
        flows = _window_flows(rec, ids)
        cols.add("flow_src", "i4", [ids[f.src] for f in flows])
        cols.add("flow_dst", "i4", [ids[f.dst] for f in flows])
        cols.add("flow_kind", "u1", [kinds.setdefault(f.kind, len(kinds)) for f in flows])
        starts, ends = table[:, 0], table[:, 1]
        t_min = float(starts.min()) if 0 < len(ops) < total else -math.inf
        mem = _window_memory(rec, t_min, _MEMORY_PER_OP * window)
        for k, name in enumerate(("t", "active", "cache", "peak")):
            cols.add(f"mem_{name}", "f8", mem[:, k])
        now = max(now, float(starts.max(initial=now)), float(np.nanmax(ends, initial=now)),
                  float(mem[:, 0].max(initial=now)))
        measured = np.count_nonzero(table[:, _FLAGS].astype(np.uint8) & START_MEASURED)
        recs.append({
            "label": label, "title": rec.title, "placement": dict(rec.placement),
            "method": rec.method, "gpu": _gpu(rec), "timing": _timing(rec),
            "ops_total": total,
            "ops": [n_ops, len(ops)], "measured_starts": int(measured),
            "in_flight": int(np.isnan(ends).sum()),
            "flows": [n_flows, len(flows)], "memory": [n_mem, len(mem)],
        })
        n_ops, n_flows, n_mem = n_ops + len(ops), n_flows + len(flows), n_mem + len(mem)
    strings = cols.compact_strings(cache.strings.items, ("name", "info"))
    payload, arrays = cols.pack()
    meta: Meta = {"recordings": recs, "lanes": lanes, "flow_kinds": list(kinds),
                  "strings": strings, "arrays": arrays, "n_ops": n_ops, "n_flows": n_flows,
                  "n_memory": n_mem, "now": now}
    return Packed(meta, payload, index)


def _window_memory(rec: Recording, t_min: float, cap: int) -> np.ndarray:
    """Samples from ``t_min`` on, sorted by time, as rows (t, active, cache, peak).

    Samplers append in nearly increasing time from several threads, so a binary
    search finds the start and a few stragglers before it are read too.
    """
    total = len(rec.memory)
    tail = rec.memory[max(0, total - cap):total]
    first = bisect_left(tail, t_min, key=lambda m: m.t) if t_min > -math.inf else 0
    mem = [m for m in tail[max(0, first - _STRAGGLERS):] if m.t >= t_min]
    mem.sort(key=lambda m: m.t)
    flat = chain.from_iterable((m.t, m.active, m.cache, m.peak) for m in mem)
    return np.fromiter(flat, dtype="f8", count=4 * len(mem)).reshape(len(mem), 4)


def _window_flows(rec: Recording, ids: dict[int, int]) -> list[Flow]:
    """Flows with both ends shown; flows are appended in op order, so read the tail."""
    out: list[Flow] = []
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
