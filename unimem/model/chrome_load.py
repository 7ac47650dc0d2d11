"""Reading a Chrome trace back into a Recording, checked against the Trace Event Format.

A trace is a JSON object whose ``traceEvents`` is an array of event objects, each
with a string ``ph``, or (the format's array form) that array alone. A trace unimem
wrote (``otherData.unimem``) loads back as it was saved; any other loads as lanes
of complete slices (``X``), one lane per (pid, tid). Whatever breaks the format or
unimem's layout raises :class:`~unimem.errors.TraceFormatError` naming the event (its
index in ``traceEvents``) or metadata entry, the field, the value given and what is
accepted. Events a Recording cannot hold are counted in a note, never dropped
silently, and two threads never merge into one lane.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from ..errors import TraceFormatError
from .chrome_check import (
    INT64,
    MAX_US,
    MISSING,
    At,
    Fields,
    graph,
    integer,
    obj,
    show,
    text,
    time_s,
)
from .graph import EDGE_KINDS
from .ranks import RankInfo
from .recording import ACTIVITIES, Calls, Flow, Lane, MemorySample, Op, Recording, Timing
from .text import plural

READABLE = (1, 2)  # unimem trace formats this version reads (chrome.FORMAT_VERSION writes)
Thread = tuple[int | str, int | str]  # (pid, tid) as a foreign trace gives them
ACCEPTED_TRACE = ("a path to a Chrome trace JSON file, a JSON object with traceEvents, "
                  "or a JSON array of events")


def from_chrome_trace(source: object) -> Recording:
    """A Recording from a trace file path (str or os.PathLike) or an already-parsed trace."""
    trace = _read(source)
    if isinstance(trace, list):
        return _foreign(trace)
    top = At("the trace")
    if not isinstance(trace, dict):
        raise TraceFormatError(f"the trace is {show(trace)}; accepted: {ACCEPTED_TRACE}")
    events = Fields(top, trace).array("traceEvents")
    other = trace.get("otherData", {})
    if not isinstance(other, dict):
        top.fail("otherData", other, "a JSON object")
    if "unimem" not in other:
        return _foreign(events)
    return _unimem(events, other["unimem"])


def _read(source: object) -> object:
    if isinstance(source, (dict, list)):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TraceFormatError(f"the trace is {show(source)}; accepted: {ACCEPTED_TRACE}")
    try:
        with open(source, "rb") as f:
            return json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nesting
        raise TraceFormatError(f"{os.fsdecode(source)!r} is not JSON ({e}); accepted: "
                               "a Chrome trace in the Trace Event Format") from e


def _event(index: int, raw: object) -> tuple[Fields, str]:
    if not isinstance(raw, dict):
        At(f"event {index}", index).fail("the event", raw, "a JSON object with a string ph")
    ev = Fields(At.of_event(index, raw), raw)
    return ev, ev.text("ph")


def _span(ev: Fields) -> tuple[float, float]:
    """A complete slice's start and end in microseconds: finite, end >= start."""
    ts, dur = ev.time_us("ts"), ev.time_us("dur", 0)
    if ts + dur > MAX_US:
        ev.at.fail("dur", ev.get("dur"), f"a duration that ends by {MAX_US:g} µs (ts is {ts!r})")
    return ts, ts + dur


def _skipped(skipped: Counter[str], what: str) -> str:
    phases = ", ".join(f"ph {ph!r} ×{k}" for ph, k in sorted(skipped.items()))
    return (f"not loaded: {plural(sum(skipped.values()), 'event')} a Recording cannot hold "
            f"({phases}); "
            f"{what}")


# -- unimem's own traces ----------------------------------------------------------
def _unimem(events: list[Any], raw_meta: object) -> Recording:
    meta = Fields(At("otherData.unimem"), obj(At("the trace"), "otherData.unimem", raw_meta))
    fmt = meta.get("format")
    if type(fmt) is not int or fmt not in READABLE:
        raise TraceFormatError(
            f"otherData.unimem: format is {show(fmt)}: unknown unimem trace format "
            f"{fmt!r}; accepted: {' or '.join(map(str, READABLE))}", field="format")
    rec = Recording(meta.text("title"), meta.names("placement"), meta.text("mode"),
                    meta.text("method"), platform=meta.names("platform"),
                    notes=list(meta.texts("notes")), wall=meta.optional("wall", "s", 0))
    rec.lanes = _lanes(meta.array("lanes"))
    if isinstance(meta.d.get("rank"), dict):
        try:
            rec.rank = RankInfo.from_dict(meta.d["rank"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TraceFormatError(f"otherData.unimem.rank: not a rank's record ({exc})",
                                   field="rank") from None
    n_lanes = len(rec.lanes)
    ops: dict[int, Op] = {}
    where: dict[int, tuple[At, str]] = {}  # op id -> where it was read, its fields' prefix
    skipped: Counter[str] = Counter()
    for i, raw in enumerate(events):
        ev, ph = _event(i, raw)
        if ph == "X" and ev.get("cat") in _OP_CATEGORIES:
            _add(ops, where, _timed(ev, fmt, n_lanes), ev.at, "args.")
        elif ph == "C" and ev.get("name") == "MLX memory":
            a = ev.fields("args")
            rec.memory.append(MemorySample(ev.time_us("ts") / 1e6, a.integer("active"),
                                           a.integer("cache"), a.integer("peak")))
        elif ph != "M" and not (ph in ("s", "f") and ev.get("cat") == "dependency"):
            skipped[ph] += 1  # M: names and order only; s/f: drawn from the flows below
    for j, raw in enumerate(meta.array("untimed_ops")):
        f = Fields(At(f"otherData.unimem.untimed_ops[{j}]"), raw, what="the op")
        _add(ops, where, _untimed(f, fmt, n_lanes), f.at, "")
    n = len(ops)
    if sorted(ops) != list(range(n)):
        gap = min(set(range(n)) - ops.keys())
        at, prefix = where[max(ops)]
        at.fail(prefix + "id", max(ops), f"an op id from 0 to {n - 1}: the {n} ops are "
                f"numbered 0..{n - 1}, each once (no op has id {gap})")
    rec.ops = [ops[i] for i in range(n)]
    for op in rec.ops:
        for k, src in enumerate(op.inputs):
            if src >= n:
                at, prefix = where[op.id]
                at.fail(f"{prefix}inputs[{k}]", src, f"the id of an op, 0 to {n - 1}")
    for i, raw in enumerate(meta.array("flows")):
        f = Fields(At(f"otherData.unimem.flows[{i}]"), raw, what="the flow")
        kind = f.get("kind")
        if kind not in EDGE_KINDS:
            f.at.fail("kind", kind, " or ".join(map(repr, EDGE_KINDS)))
        rec.flows.append(Flow(f.integer("src", 0, n - 1), f.integer("dst", 0, n - 1), kind,
                              f.integer("nbytes")))
    if meta.get("timing") is not None:
        rec.timing = _timing(meta.fields("timing"))
    if meta.get("graph") is not None:
        rec.graph = graph(meta.get("graph"))
    if skipped:
        rec.notes.append(_skipped(skipped, "unimem writes only ph 'M', 'X', 's', 'f' and "
                                           "'C' (MLX memory) events"))
    return rec


def _lanes(raw_lanes: list[Any]) -> list[Lane]:
    lanes: list[Lane] = []
    for i, raw in enumerate(raw_lanes):
        f = Fields(At(f"otherData.unimem.lanes[{i}]"), raw, what="the lane")
        lane = Lane(f.integer("id", i, i), f.text("name"), f.text("device"),
                    f.integer("stream_index", -1))
        same = [x.id for x in lanes if x.name == lane.name]
        if same:  # lanes are found and counted by name: two of one name would merge
            f.at.fail("name", lane.name, f"a name no other lane has (lane {same[0]} has it)")
        lanes.append(lane)
    return lanes


def _add(ops: dict[int, Op], where: dict[int, tuple[At, str]], op: Op, at: At,
         prefix: str) -> None:
    if op.id in ops:
        at.fail(prefix + "id", op.id, f"an op id no other op has ({where[op.id][0].where} "
                "has it)")
    ops[op.id], where[op.id] = op, (at, prefix)


def _timed(ev: Fields, fmt: int, n_lanes: int) -> Op:
    """An op from its slice: times from ts and dur, the rest from args."""
    a = ev.fields("args")
    start, end = _span(ev)
    calls = (_calls(a, "calls") if fmt >= 2 or "calls" in a.d
             else _calls_from_name(ev.text("name")))
    kind = a.get("start")
    if kind not in ("measured", "derived"):
        a.at.fail("args.start", kind, "'measured' or 'derived'")
    return Op(a.integer("id"), a.integer("lane", 0, n_lanes - 1), calls,
              a.time_us("submit_us") / 1e6, start / 1e6, end / 1e6,
              _seconds(a.optional("dispatched_us", "us")), a.integers("inputs"),
              a.shapes("shapes"), a.texts("dtypes"), a.integer("nbytes"), kind == "measured",
              a.text("detail"), _activity(a), _node(a))


# an op's slice is in category "op" (an MLX primitive) or its activity (a CUPTI record)
_OP_CATEGORIES = ("op", *ACTIVITIES[1:])


def _activity(f: Fields) -> str:
    """An op's ``activity`` (absent before unimem recorded GPU kernels: an MLX op)."""
    value = f.d.get("activity", "")
    if value not in ACTIVITIES:
        f.at.fail(f.name("activity"), value, "one of " + ", ".join(map(repr, ACTIVITIES)))
    return str(value)


def _node(f: Fields) -> int | None:
    """An op's graph node (absent or null where the method does not know it)."""
    return None if f.d.get("node") is None else f.integer("node")


def _untimed(f: Fields, fmt: int, n_lanes: int) -> Op:
    calls = _calls(f, "calls") if fmt >= 2 or "calls" in f.d else _calls_from_name(f.text("name"))
    op = Op(f.integer("id"), f.integer("lane", 0, n_lanes - 1), calls, f.time_s("submit"),
            f.optional("start"), f.optional("end"), f.optional("dispatched"),
            f.integers("inputs"), f.shapes("shapes"), f.texts("dtypes"), f.integer("nbytes"),
            f.flag("start_measured"), f.text("detail"), _activity(f), _node(f))
    if op.start is not None and op.end is not None and op.end < op.start:
        f.at.fail("end", op.end, f"null or a time >= start ({op.start!r})")
    return op


def _seconds(us: float | None) -> float | None:
    return None if us is None else us / 1e6


def _calls(f: Fields, key: str) -> Calls:
    pairs, field = f.array(key), f.name(key)
    if not pairs:
        f.at.fail(field, pairs, "a non-empty array of [kind, count] pairs")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            f.at.fail(f"{field}[{i}]", pair, "a [kind, count] pair: a string and an integer >= 0")
        # 0: a further kernel of a primitive whose call an earlier bar counted
        out.append((text(f.at, f"{field}[{i}][0]", pair[0]),
                    integer(f.at, f"{field}[{i}][1]", pair[1], 0)))
    return tuple(out)


def _calls_from_name(name: str) -> Calls:
    """A format 1 op's calls, from the label that was all it stored: "exp ×2 + sin ×2"."""
    out = []
    for part in name.split(" + "):
        kind, _, k = part.partition(" ×")
        counted = k.isascii() and k.isdigit() and int(k) >= 1
        out.append((kind, int(k)) if counted else (part, 1))
    return tuple(out)


def _timing(t: Fields) -> Timing:
    samples = tuple(time_s(t.at, f"timing.samples[{i}]", v, 0) for i, v in
                    enumerate(t.array("samples")))
    if not samples:
        t.at.fail("timing.samples", [], "a non-empty array of run times > 0 (seconds)")
    for i, sample in enumerate(samples):
        if sample <= 0:
            t.at.fail(f"timing.samples[{i}]", sample, "a run time > 0 (seconds)")
    return Timing(samples, t.integer("warmup"))


# -- any other Chrome trace -------------------------------------------------------
def _foreign(events: list[Any]) -> Recording:
    """One lane per (pid, tid) that has complete slices, one op per slice."""
    rec = Recording("imported trace", {}, "imported",
                    "imported from a Chrome trace: times as the file gives them")
    names: dict[Thread, str] = {}
    slices: list[tuple[float, float, str, Thread]] = []
    skipped: Counter[str] = Counter()
    for i, raw in enumerate(events):
        ev, ph = _event(i, raw)
        if ph == "X":
            name = ev.text("name") if "name" in ev.d else "?"
            slices.append((*_span(ev), name, _thread(ev)))
        elif ph == "M" and ev.get("name") == "thread_name":
            names[_thread(ev)] = ev.fields("args").text("name")
        elif ph != "M":  # other metadata only names processes and orders rows
            skipped[ph] += 1
    lane_of: dict[Thread, int] = {}
    renamed = []
    for start, end, name, key in sorted(slices, key=lambda s: s[0]):
        if key not in lane_of:
            label = wanted = names.get(key, f"{key[0]}/{key[1]}")
            taken = {lane.name for lane in rec.lanes}
            k = 1
            while label in taken:  # two threads of one name stay two lanes
                k += 1
                label = f"{wanted} ({key[0]}/{key[1]})" + (f" #{k}" if k > 2 else "")
            if label != wanted:
                renamed.append(f"{wanted!r} -> {label!r}")
            lane_of[key] = len(rec.lanes)
            rec.lanes.append(Lane(len(rec.lanes), label, "?", -1))
        rec.ops.append(Op(len(rec.ops), lane_of[key], ((name, 1),), start / 1e6, start / 1e6,
                          end / 1e6, start_measured=True))
    if renamed:
        rec.notes.append("threads of one name became lanes of distinct names: "
                         + ", ".join(renamed))
    if skipped:
        rec.notes.append(_skipped(skipped, "only complete slices (ph 'X') become ops"))
    return rec


def _thread(ev: Fields) -> Thread:
    out: list[int | str] = []
    for key in ("pid", "tid"):
        value = ev.get(key)
        if value is MISSING:
            value = 0
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)
                                        and -INT64 <= value < INT64)
        if not ok:
            ev.at.fail(key, value, "an integer (signed, 64-bit) or a string")
        out.append(value)
    return out[0], out[1]
