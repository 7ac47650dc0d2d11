"""What changed between recordings: calls and time per op kind and stream.

Reads Recordings only (never MLX), so loaded traces compare as well as live ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.recording import Recording
from ..model.text import fmt_time, text_table


@dataclass(frozen=True)
class DiffRow:
    kind: str
    lane: str
    counts: tuple[int, ...]  # MLX calls per recording
    times: tuple[float, ...]  # seconds per recording
    derived: tuple[bool, ...] = ()  # per recording: time apportioned from a mixed segment


@dataclass(frozen=True)
class Diff:
    """Per op kind and stream: calls and total time in each recording."""

    labels: tuple[str, ...]
    rows: tuple[DiffRow, ...]
    apportioned: bool  # some segment mixed kinds: its time was split per call

    def row(self, kind: str, lane: str) -> DiffRow:
        for r in self.rows:
            if r.kind == kind and r.lane == lane:
                return r
        raise KeyError(f"no row for {kind!r} on {lane!r}")

    def __repr__(self) -> str:
        head = ["kind", "stream"]
        for label in self.labels:
            head += [f"{label} calls", f"{label} time"]
        table = [head] + [
            [r.kind, r.lane] + [x for c, t, d in zip(r.counts, r.times, r.derived or
                                                     (False,) * len(r.counts))
                                 for x in (str(c), fmt_time(t) + (" *" if d else ""))]
            for r in self.rows
        ]
        lines = [f"Diff of {' vs '.join(self.labels)} per op kind and stream"]
        lines += text_table(table)
        if self.apportioned:
            lines.append("  note: * derived, not measured: part of this time comes from a "
                         "segment that mixed kinds, its time split evenly per call")
        return "\n".join(lines)


Totals = dict[tuple[str, str], tuple[int, float, bool]]  # (kind, lane) -> calls, s, derived


def _kind_totals(rec: Recording) -> tuple[Totals, bool]:
    names = {lane.id: lane.name for lane in rec.lanes}
    out: Totals = {}
    mixed = False
    for op in rec.ops:
        split = len(op.calls) > 1
        mixed |= split
        calls, dur = op.count, op.duration or 0.0
        for kind, k in op.calls:  # a mixed segment's time apportioned per call (derived)
            c, t, d = out.get((kind, names[op.lane]), (0, 0.0, False))
            share = dur * k / calls if calls else dur  # calls 0: a further kernel of a call
            out[(kind, names[op.lane])] = (c + k, t + share, d or split)
    return out, mixed


def diff(*recordings: Recording, labels: tuple[str, ...] | None = None) -> Diff:
    """Compare recordings (two or more) per op kind and stream: calls and total time."""
    if len(recordings) < 2:
        raise ValueError("diff needs at least two recordings, e.g. um.diff(rec_a, rec_b)")
    if not all(isinstance(r, Recording) for r in recordings):
        raise TypeError("diff takes Recording objects (from um.profile, um.watch or "
                        "Recording.load)")
    if labels is None:
        labels = tuple("abcdefghijklmnopqrstuvwxyz"[i] for i in range(len(recordings)))
    if len(labels) != len(recordings):
        raise ValueError(f"got {len(labels)} labels for {len(recordings)} recordings")
    totals = [_kind_totals(r) for r in recordings]
    keys = sorted({k for t, _ in totals for k in t})
    none = (0, 0.0, False)
    rows = tuple(DiffRow(kind, lane,
                         tuple(t.get((kind, lane), none)[0] for t, _ in totals),
                         tuple(t.get((kind, lane), none)[1] for t, _ in totals),
                         tuple(t.get((kind, lane), none)[2] for t, _ in totals))
                 for kind, lane in keys)
    return Diff(tuple(labels), rows, any(m for _, m in totals))
