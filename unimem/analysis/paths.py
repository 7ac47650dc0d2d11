"""Paths through a finished Recording: what set the makespan, and who waited for whom.

These read a Recording only (never MLX), so they work on loaded traces too.
Every answer follows from the recorded starts, ends and dependencies: with
derived starts (the default measurement) an op "waited" exactly when its start
was set by another lane's producer rather than by its own lane or its hand-off.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..checks import check_recording
from ..model.recording import Op, Recording
from ..model.text import TextRepr, fmt_time, plural


def _lane_names(rec: Recording) -> dict[int, str]:
    return {lane.id: lane.name for lane in rec.lanes}


def _run_order(op: Op) -> tuple[float, int]:
    """Where an op stands in its stream's order: a measured start where there is one
    (a native recording lists ops in graph-walk order, not in the order they ran),
    else its hand-off (the hand-off methods hand a stream's ops over in order)."""
    if op.start_measured and op.start is not None:
        return (op.start, op.id)
    return (op.submit, op.id)


def _previous_on_lane(rec: Recording) -> dict[int, Op]:
    """op id -> the op that ran before it on its lane (a stream runs in order)."""
    last: dict[int, Op] = {}
    prev: dict[int, Op] = {}
    for op in sorted(rec.ops, key=_run_order):
        if op.lane in last:
            prev[op.id] = last[op.lane]
        last[op.lane] = op
    return prev


@dataclass(frozen=True)
class Wait:
    """``dst`` (on ``waiter``) could not start until ``src`` (on ``on``) ended."""

    src: int
    dst: int
    waiter: str
    on: str
    seconds: float


def _cross_waits(rec: Recording) -> list[Wait]:
    """For each op: how long past its stream-order readiness a producer elsewhere held it."""
    names, prev = _lane_names(rec), _previous_on_lane(rec)
    out = []
    for op in rec.ops:
        cross = [rec.ops[i] for i in op.inputs
                 if rec.ops[i].lane != op.lane and rec.ops[i].end is not None]
        if not cross:
            continue
        before = prev.get(op.id)
        ready = max(op.submit, before.end if before and before.end is not None else op.submit)
        src = max(cross, key=lambda o: (o.end, o.id))
        assert src.end is not None
        if src.end > ready:
            out.append(Wait(src.id, op.id, names[op.lane], names[src.lane], src.end - ready))
    return out


@dataclass(frozen=True, repr=False)
class CriticalPath(TextRepr):
    """The chain of ops, through stream order and dependencies, that ends last."""

    ops: tuple[int, ...]  # in time order
    lanes: tuple[str, ...]  # lane of each op
    names: tuple[str, ...]
    waits: tuple[Wait, ...]  # cross-stream edges on the path
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start

    def lines(self) -> list[str]:
        if not self.ops:
            return ["Critical path: empty (no finished ops)"]
        lanes = list(dict.fromkeys(self.lanes))
        head = f"Critical path: {len(self.ops)} ops over {plural(len(lanes), 'lane')}"
        lines = [f"{head}, {fmt_time(self.length)}"]
        # runs of consecutive ops on one lane
        run_start = 0
        for i in range(1, len(self.ops) + 1):
            if i == len(self.ops) or self.lanes[i] != self.lanes[run_start]:
                names = self.names[run_start:i]
                shown = ", ".join(names[:3]) + (f", … ({len(names)} ops)" if len(names) > 3
                                                 else "")
                lines.append(f"  {self.lanes[run_start]}: {shown}")
                run_start = i
        for w in self.waits:
            lines.append(f"  wait: {w.waiter} waited {fmt_time(w.seconds)} for {w.on} "
                         f"(op {w.src} -> op {w.dst})")
        return lines


def critical_path(rec: Recording) -> CriticalPath:
    """Walk back from the last op to end: each step takes the predecessor (the op
    before it on its lane, or a producer) that ended last, the one its start waited on."""
    check_recording(rec, what="critical_path")
    # the host lane's phases run back to back to the run's end: they would be the path
    # every time, and they say what the host did, not which op waited on which
    done = [op for op in rec.ops if op.end is not None and op.activity != "host"]
    if not done:
        return CriticalPath((), (), (), (), 0.0, 0.0)
    names, prev = _lane_names(rec), _previous_on_lane(rec)
    waits = {(w.src, w.dst): w for w in _cross_waits(rec)}
    op = max(done, key=lambda o: (o.end, o.id))
    chain, on_path = [op], []
    while True:
        preds = [rec.ops[i] for i in op.inputs]
        if op.id in prev:
            preds.append(prev[op.id])
        preds = [p for p in preds if p.end is not None]
        if not preds:
            break
        p = max(preds, key=lambda o: (o.end, o.id))
        if (p.id, op.id) in waits:
            on_path.append(waits[(p.id, op.id)])
        chain.append(p)
        op = p
    chain.reverse()
    on_path.reverse()
    first = chain[0]
    return CriticalPath(
        ops=tuple(o.id for o in chain),
        lanes=tuple(names[o.lane] for o in chain),
        names=tuple(o.name for o in chain),
        waits=tuple(on_path),
        start=first.start if first.start is not None else first.submit,
        end=chain[-1].end or 0.0,
    )


@dataclass(frozen=True, repr=False)
class Waits(TextRepr):
    """Time each lane spent held by another lane's producer, summed per pair."""

    totals: tuple[tuple[str, str, float, int], ...]  # (waiter, on, seconds, count)

    def seconds(self, waiter: str, on: str | None = None) -> float:
        return sum(s for w, o, s, _ in self.totals if w == waiter and on in (None, o))

    def lines(self) -> list[str]:
        if not self.totals:
            return ["Waits: no lane waited on another"]
        lines = ["Waits (time a lane could not start because another lane's producer ran):"]
        lines += [f"  {w} waited {fmt_time(s)} on {o} ({plural(n, 'time')})"
                  for w, o, s, n in self.totals]
        return lines


def waits(rec: Recording) -> Waits:
    """Per lane, the gap between when stream order let each op start and when its
    producer on another lane ended (zero when the producer was already done)."""
    check_recording(rec, what="waits")
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for w in _cross_waits(rec):
        acc[(w.waiter, w.on)].append(w.seconds)
    return Waits(tuple((w, o, sum(v), len(v)) for (w, o), v in sorted(acc.items())))
