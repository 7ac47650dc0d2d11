"""Put every rank's clock on rank 0's: offsets and drift from ping-pong exchanges.

Each exchange gives the peer's clock minus ours as NTP does (RFC 5905, section 8):
``((t1 - t0) + (t2 - t3)) / 2``, right to within half the round trip: the offset
must lie in ``[t2 - t3, t1 - t0]``, or a message would have arrived before it was
sent. The exchanges made at the start of a recording (milliseconds apart, so the
offset cannot move between them by more than clocks' drift of parts per million
allows) must all hold at once, so their intervals are intersected: on a link whose
delays are lopsided, one exchange fast out and slow back, the next the other way,
the intersection is far narrower than any one round trip. Likewise at the end; the
line through the two gives the offset and the drift between them (clocks of two
machines run at slightly different rates), and between the two a mapped time is
within the larger of the two bounds. Ranks are mapped onto rank 0 through whichever
rank already mapped holds exchanges with them: a neighbour in the ring (send/recv,
bounds add up along the chain) or rank 0 itself (all_gather, no chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model.ranks import Exchange, RankInfo


@dataclass(frozen=True)
class ClockMap:
    """Another clock onto ours: ``ours = theirs - (offset_ns + drift * (ours - ref_ns))``."""

    offset_ns: float  # their clock minus ours, at ref_ns on ours
    drift: float  # change of the offset per nanosecond of ours
    ref_ns: float
    bound_ns: float  # how far a mapped time can be from the truth
    exchanges: int = 0  # how many exchanges the fit saw

    def to_ours(self, theirs_ns: float) -> float:
        """One of their timestamps on our clock (solving the linear map exactly)."""
        # ours = theirs - offset - drift * (ours - ref)  =>  ours (1 + drift) = ...
        return (theirs_ns - self.offset_ns + self.drift * self.ref_ns) / (1 + self.drift)

    def then(self, inner: ClockMap) -> ClockMap:
        """``inner`` maps a third clock onto theirs; the result maps it onto ours."""
        # theirs = ours + o1 + d1 (ours - r1); third = theirs + o2 + d2 (theirs - r2)
        # to first order in the drifts (parts per million): offsets and drifts add
        offset = self.offset_ns + inner.offset_ns + inner.drift * (
            self.ref_ns + self.offset_ns - inner.ref_ns)
        return ClockMap(offset, self.drift + inner.drift, self.ref_ns,
                        self.bound_ns + inner.bound_ns, self.exchanges + inner.exchanges)


IDENTITY = ClockMap(0.0, 0.0, 0.0, 0.0)


def best(exchanges: Sequence[Exchange]) -> Exchange:
    """The exchange with the shortest round trip: its offset has the tightest bound."""
    if not exchanges:
        raise ValueError("no exchanges to fit a clock from")
    return min(exchanges, key=lambda e: (e.delay_ns, e.t0))


@dataclass(frozen=True)
class Point:
    """The peer's clock minus ours around ``at_ns`` (ours), within ``±bound_ns``."""

    at_ns: float
    offset_ns: float
    bound_ns: float


def point(exchanges: Sequence[Exchange]) -> Point:
    """The offset every exchange of one sync allows (their intervals' intersection).

    If they allow none (a clock stepped during the sync, or a stamp is wrong), the
    exchange with the shortest round trip alone is believed."""
    lo = max(exchanges, key=lambda e: e.interval_ns[0])
    hi = min(exchanges, key=lambda e: e.interval_ns[1])
    low, high = lo.interval_ns[0], hi.interval_ns[1]
    if low > high:
        b = best(exchanges)
        return Point(b.midpoint_ns, b.offset_ns, b.bound_ns)
    return Point((lo.midpoint_ns + hi.midpoint_ns) / 2, (low + high) / 2, (high - low) / 2)


def fit(exchanges: Sequence[Exchange]) -> ClockMap:
    """The peer's clock onto ours from exchanges at the start and (if any) the end."""
    if not exchanges:
        raise ValueError("no exchanges to fit a clock from")
    start = [e for e in exchanges if e.when == "start"] or list(exchanges)
    end = [e for e in exchanges if e.when == "end"]
    a = point(start)
    if not end:
        return ClockMap(a.offset_ns, 0.0, a.at_ns, a.bound_ns, len(exchanges))
    b = point(end)
    span = b.at_ns - a.at_ns
    drift = (b.offset_ns - a.offset_ns) / span if span > 0 else 0.0
    return ClockMap(a.offset_ns, drift, a.at_ns, max(a.bound_ns, b.bound_ns),
                    len(exchanges))


def rank_clocks(ranks: Sequence[RankInfo]) -> list[ClockMap]:
    """Each rank's clock onto rank 0's, through the mapped rank that gives the
    tightest bound among those that exchanged stamps with it."""
    by_rank = {r.rank: r for r in ranks}
    maps = [IDENTITY]
    for k in range(1, len(ranks)):
        ways = [maps[p].then(fit(with_k)) for p in range(k)
                if (with_k := [e for e in by_rank[p].exchanges if e.peer == k])]
        if not ways:
            raise ValueError(f"no rank below {k} made a clock exchange with rank {k}: "
                             "record every rank with unimem's distributed watch")
        maps.append(min(ways, key=lambda m: m.bound_ns))
    return maps
