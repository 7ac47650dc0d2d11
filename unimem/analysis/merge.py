"""Merge the recordings of a distributed job's ranks onto one time axis, and read it.

Every rank's ops are mapped onto rank 0's clock (``clocks.py``) and put on lanes of
their own ("rank 1 · cpu"); the k-th collective of each kind on each rank is the
same collective (every rank of a group runs them in the same order, or the job
would hang), and flows of kind "collective" join them across ranks. A Send and its
Recv are joined the same way, the k-th Send of one rank with the k-th Recv of the
other, where the job's two ranks leave no doubt who the peer was (the recordings
do not say). For each collective: when each rank arrived (its bar's start), how
long it waited for the last to arrive, and who that was. Summed over the job, that
is the straggler table: how long each rank made the others wait. The overlap says
how much of a rank's time in collectives other work on that rank ran alongside.

Pure data: no MLX here, so merged recordings can be read anywhere, from per-rank
recordings or their Chrome trace files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..model.graph import COLLECTIVE
from ..model.ranks import RankInfo
from ..model.recording import Flow, Lane, Op, Recording
from ..model.text import TextRepr, fmt_time, plural, prose, text_table
from .clocks import ClockMap, rank_clocks

# MLX's distributed primitives, as the native walk names them ("Sum AllReduce", ...), and
# the calls that make them, as the hand-off method names its bars
COLLECTIVE_NAMES = ("AllReduce", "AllGather", "ReduceScatter", "Send", "Recv", "all_sum",
                    "all_gather", "all_max", "all_min", "sum_scatter")


# point-to-point ops by the names both methods give them, as "send" or "recv"
P2P = {"send": "send", "recv": "recv", "recv_like": "recv"}
SEND_RECV = "Send → Recv"  # the kind of a joined message; its ranks are (sender, receiver)


def is_collective(name: str) -> bool:
    return any(k.lower() in name.lower() for k in COLLECTIVE_NAMES)


@dataclass(frozen=True)
class Collective:
    """One collective, as every rank ran it (times on rank 0's clock, seconds)."""

    index: int  # k-th of its kind
    kind: str  # the op's name, or SEND_RECV for a message between two ranks
    ranks: tuple[int, ...]  # the ranks that took part; every other field is per rank of it
    ops: tuple[int, ...]  # the merged recording's op ids
    arrivals: tuple[float, ...]  # the bars' starts
    ends: tuple[float, ...]
    nbytes: int

    @property
    def last(self) -> int:
        """The rank whose late arrival the others waited for."""
        return self.ranks[max(range(len(self.arrivals)), key=lambda i: self.arrivals[i])]

    @property
    def waits(self) -> tuple[float, ...]:
        """Per rank: from its arrival to the last rank's, but no longer than its own bar.

        Of a Send and its Recv only the receiver is counted as waiting: the ring backend
        returns from a small send once the socket took it, and a long send bar may be
        the transfer itself or a full socket; the recordings cannot tell which."""
        last = max(self.arrivals)
        waits = [max(0.0, min(last, e) - a) for a, e in zip(self.arrivals, self.ends)]
        if self.kind == SEND_RECV:
            waits[0] = 0.0
        return tuple(waits)


@dataclass(repr=False)
class Merge(TextRepr):
    """The job on one axis: the merged recording, its collectives, stragglers, overlap."""

    _html_class = "unimem-merge"

    recording: Recording
    ranks: list[RankInfo]
    clocks: list[ClockMap]
    collectives: list[Collective]
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.ranks)

    @property
    def bound(self) -> float:
        """The largest clock-mapping error bound of any rank, in seconds."""
        return max(c.bound_ns for c in self.clocks) / 1e9

    def stragglers(self) -> list[tuple[int, float, int]]:
        """Per rank: the time it made the others wait (summed over collectives, each
        collective's waits charged to its last arriver) and how often it was last."""
        made_wait = [0.0] * self.size
        last = [0] * self.size
        for c in self.collectives:
            waits = sum(c.waits)
            made_wait[c.last] += waits
            last[c.last] += waits > 0
        return [(r, made_wait[r], last[r]) for r in range(self.size)]

    def waited(self) -> list[float]:
        """Per rank: its own time spent waiting for later ranks in collectives."""
        out = [0.0] * self.size
        for c in self.collectives:
            for r, w in zip(c.ranks, c.waits):
                out[r] += w
        return out

    def overlap(self) -> list[tuple[float, float]]:
        """Per rank: (time in collectives, of it the time other work of that rank ran)."""
        rec = self.recording
        out = []
        for r in range(self.size):
            lanes = {lane.id for lane in rec.lanes if lane.name.startswith(f"rank {r} ·")}
            spans = [(op.start, op.end, is_collective(op.name)) for op in rec.ops
                     if op.lane in lanes and op.start is not None and op.end is not None]
            comm = _union([(s, e) for s, e, c in spans if c])
            work = _union([(s, e) for s, e, c in spans if not c])
            out.append((_length(comm), _length(_intersect(comm, work))))
        return out

    def table(self) -> list[list[str]]:
        waited = self.waited()
        overlap = self.overlap()
        rows = [["rank", "host", "made others wait", "times last", "waited", "in collectives",
                 "overlapped"]]
        for (r, made, last), w, (comm, both) in zip(self.stragglers(), waited, overlap):
            rows.append([str(r), self.ranks[r].host, fmt_time(made), str(last), fmt_time(w),
                         fmt_time(comm), fmt_time(both)])
        return rows

    def lines(self) -> list[str]:
        backend = self.ranks[0].backend if self.ranks else "?"
        head = (f"Merged job: {plural(self.size, 'rank')} ({backend}), "
                f"{plural(len(self.collectives), 'collective')} joined across ranks")
        sync = self.ranks[0].sync if self.ranks else "?"
        clocks = f"  clocks: each rank on rank 0's ({sync} stamps), within ±{fmt_time(self.bound)}"
        lines = [head, clocks]
        lines += text_table(self.table())
        lines += [x for n in self.notes for x in prose(f"  note: {n}")]
        return lines


def merge(recordings: Iterable[Recording | str | os.PathLike[str]]) -> Merge:
    """One recording of the whole job from each rank's (Recordings or their files)."""
    recs = [r if isinstance(r, Recording) else Recording.load(r) for r in recordings]
    if not recs:
        raise ValueError("merge needs the recordings of a job's ranks, got none")
    missing = [r.title for r in recs if r.rank is None]
    if missing:
        raise ValueError(f"{plural(len(missing), 'recording')} carry no rank ({missing[0]!r}):"
                         " record each rank with um.watch_rank() inside the job")
    recs.sort(key=lambda r: r.rank.rank if r.rank else 0)
    ranks = [r.rank for r in recs if r.rank is not None]
    size = ranks[0].size
    if [k.rank for k in ranks] != list(range(size)) or any(k.size != size for k in ranks):
        raise ValueError(f"the recordings are ranks {[k.rank for k in ranks]} of a job of "
                         f"{size}: merge needs every rank once")
    clocks = rank_clocks(ranks)
    origin0 = ranks[0].origin_ns
    merged = Recording(f"{recs[0].title}, {size} ranks merged", {}, recs[0].mode,
                       f"merged from {size} ranks, each on rank 0's clock; {recs[0].method}",
                       platform=dict(recs[0].platform))
    per_rank: list[list[Op]] = []
    for rec, info, clock in zip(recs, ranks, clocks):
        shift = (clock.to_ours(info.origin_ns) - origin0) / 1e9  # this rank's zero on rank 0's
        lane_of = {}
        for lane in rec.lanes:
            new = Lane(len(merged.lanes), f"rank {info.rank} · {lane.name}", lane.device,
                       lane.stream_index)
            merged.lanes.append(new)
            lane_of[lane.id] = new.id
        base = len(merged.ops)
        ops = []
        for op in rec.ops:
            moved = replace(
                op, id=base + op.id, lane=lane_of[op.lane], submit=op.submit + shift,
                start=None if op.start is None else op.start + shift,
                end=None if op.end is None else op.end + shift,
                dispatched=None if op.dispatched is None else op.dispatched + shift,
                inputs=tuple(base + i for i in op.inputs))
            merged.ops.append(moved)
            ops.append(moved)
        merged.flows += [replace(f, src=base + f.src, dst=base + f.dst) for f in rec.flows]
        merged.memory += [replace(m, t=m.t + shift) for m in rec.memory]
        per_rank.append(ops)
    by_kind = [_by_kind(ops) for ops in per_rank]
    collectives, notes = _join(by_kind)
    pairs, p2p_notes = _pair(by_kind)
    collectives = sorted(collectives + pairs, key=lambda c: (min(c.arrivals), c.kind))
    notes += p2p_notes
    for c in collectives:  # a flow from each rank's collective to the next rank's
        merged.flows += [Flow(a, b, COLLECTIVE, c.nbytes) for a, b in zip(c.ops, c.ops[1:])]
    merged.memory.sort(key=lambda m: m.t)
    bound = max(c.bound_ns for c in clocks) / 1e9
    merged.notes.append(f"{size} ranks on rank 0's clock (offsets and drift from {ranks[0].sync} "
                        f"stamps through mx.distributed, error within ±{fmt_time(bound)})")
    merged.notes += notes
    return Merge(merged, ranks, clocks, collectives, notes)


def _by_kind(ops: Sequence[Op]) -> dict[str, list[Op]]:
    """A rank's collective ops (Send and Recv among them) by name, in order of start."""
    kinds: dict[str, list[Op]] = {}
    for op in ops:
        name = op.name
        if op.start is not None and is_collective(name):
            kinds.setdefault(name, []).append(op)
    return {name: _in_order(found) for name, found in kinds.items()}


def _join(by_kind: Sequence[dict[str, list[Op]]]) -> tuple[list[Collective], list[str]]:
    """The k-th collective of each kind on every rank is the same collective."""
    notes = []
    names = sorted(n for n in set().union(*(k.keys() for k in by_kind))
                   if n.lower() not in P2P)
    out = []
    for name in names:
        counts = [len(k.get(name, [])) for k in by_kind]
        if len(set(counts)) > 1:
            notes.append(f"{name}: {counts} per rank; the first {min(counts)} are joined")
        for i in range(min(counts)):
            ops = [k[name][i] for k in by_kind]
            out.append(_collective(i, name, tuple(range(len(by_kind))), ops))
    out.sort(key=lambda c: (min(c.arrivals), c.kind))
    joined = Counter(c.kind for c in out)
    if out:
        notes.insert(0, "collectives joined: " + ", ".join(f"{k} ×{n}" for k, n in joined.items()))
    return out, notes


def _pair(by_kind: Sequence[dict[str, list[Op]]]) -> tuple[list[Collective], list[str]]:
    """In a job of two ranks, the k-th Send of one is the k-th Recv of the other."""
    sides = [{d: _in_order(o for name, ops in kinds.items() if P2P.get(name.lower()) == d
                           for o in ops)
              for d in ("send", "recv")} for kinds in by_kind]
    if not any(ops for side in sides for ops in side.values()):
        return [], []
    if len(by_kind) != 2:
        why = (f"Send and Recv are not joined: the recordings do not say which of the "
               f"{len(by_kind)} ranks each message went to")
        return [], [why]
    out, notes = [], []
    for src in (0, 1):
        sends, recvs = sides[src]["send"], sides[1 - src]["recv"]
        if len(sends) != len(recvs):
            notes.append(f"rank {src} sent {len(sends)} and rank {1 - src} received "
                         f"{len(recvs)}; the first {min(len(sends), len(recvs))} are joined")
        for i, (s, r) in enumerate(zip(sends, recvs)):
            out.append(_collective(i, SEND_RECV, (src, 1 - src), [s, r]))
    return out, notes


def _in_order(ops: Iterable[Op]) -> list[Op]:
    return sorted((o for o in ops if o.start is not None), key=lambda o: (o.start, o.id))


def _collective(index: int, kind: str, ranks: tuple[int, ...], ops: Sequence[Op]
                ) -> Collective:
    return Collective(index, kind, ranks, tuple(o.id for o in ops),
                      tuple(o.start or 0.0 for o in ops), tuple(o.end or 0.0 for o in ops),
                      ops[0].nbytes)


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]
               ) -> list[tuple[float, float]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _length(spans: list[tuple[float, float]]) -> float:
    return sum(e - s for s, e in spans)
