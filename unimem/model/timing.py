"""When each op started: one rule, for a finished recording and for a live one.

MLX stamps no start times (its API has no per-op timestamps), so a start is derived from
what was measured: the latest of the op's hand-off, the moment its lane was free
(a stream is a FIFO: the previous op's end) and the ends of the producers it read
(MLX fences a consumer on a producer elsewhere), never after its own end. An op
still in flight holds its lane at least from its start, so later ops queue behind it.

:func:`start_of` is that rule for one op, given what is known so far. A finished
recording applies it to every op in hand-off order (:func:`derive_starts`, after
:func:`tighten_ends`); a live one (:class:`LiveStarts`) applies it as ends arrive,
and an op's live start is final, and equal to the batch one, once it and every op
before it have ends. Pure functions over the model: no MLX.
"""

from __future__ import annotations

from collections.abc import Sequence

from .recording import Op, Recording


def start_of(op: Op, ops: Sequence[Op], lane_free: float | None) -> float:
    """The start of ``op`` given what is known: the latest of its hand-off, ``lane_free``
    (when its lane was last known busy until; None when nothing ran there before) and
    the ends of its producers known so far, but no later than its own end."""
    start = op.submit if lane_free is None else max(op.submit, lane_free)
    for src in op.inputs:
        end = ops[src].end
        if end is not None and end > start:
            start = end
    return start if op.end is None else min(start, op.end)


def place(op: Op, ops: Sequence[Op], lane_free: dict[int, float]) -> None:
    """Derive ``op.start`` (a measured start is kept) and note, in ``lane_free``, until
    when its lane is busy: its end, or while it is in flight at least its start."""
    if not op.start_measured:
        op.start = start_of(op, ops, lane_free.get(op.lane))
    busy = op.end if op.end is not None else op.start
    if busy is not None:
        lane_free[op.lane] = busy


def tighten_ends(rec: Recording) -> None:
    """A waiter's end is an upper bound, late by its wake-up. An op cannot finish
    after the ops that needed it (its readers, the next op on its lane), so each
    end is lowered to the earliest of those, when one was stamped earlier."""
    bound: dict[int, float] = {}  # op id -> earliest end of an op that waited for it
    prev_on_lane: dict[int, int] = {}
    before: dict[int, int | None] = {}
    for op in rec.ops:
        before[op.id] = prev_on_lane.get(op.lane)
        prev_on_lane[op.lane] = op.id
    for op in reversed(rec.ops):  # readers come after their producers
        end = op.end
        if end is not None and op.id in bound and bound[op.id] < end and not op.start_measured:
            end = op.end = bound[op.id]
        if end is None:
            continue
        waited = [*op.inputs, before[op.id]]
        for src in waited:
            if src is not None and end < bound.get(src, float("inf")):
                bound[src] = end


def derive_starts(rec: Recording) -> None:
    """Every derived start of a finished recording, after :func:`tighten_ends`."""
    tighten_ends(rec)
    lane_free: dict[int, float] = {}
    for op in rec.ops:  # ops are in hand-off order, which is each lane's FIFO order
        place(op, rec.ops, lane_free)


class LiveStarts:
    """:func:`derive_starts` as ends arrive: each op is placed for good once it and
    every op before it have ends; the ops after that are placed again at each update."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._done = 0  # ops[:_done] have ends and final starts
        self._lane_free: dict[int, float] = {}  # after ops[:_done]

    @property
    def settled(self) -> int:
        """How many ops, from the first, have an end and their final start."""
        return self._done

    def update(self) -> None:
        ops = self.recording.ops
        n = len(ops)  # the recorder may append meanwhile: place what is here now
        while self._done < n and ops[self._done].end is not None:
            place(ops[self._done], ops, self._lane_free)
            self._done += 1
        provisional = dict(self._lane_free)
        for i in range(self._done, n):
            place(ops[i], ops, provisional)
