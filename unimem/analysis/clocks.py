"""Put every rank's clock on rank 0's: offsets and drift from ping-pong exchanges.

Each exchange gives the peer's clock minus ours as NTP does (RFC 5905, section 8):
``((t1 - t0) + (t2 - t3)) / 2``, right to within half the round trip. Of the
exchanges made at the start of a recording the one with the shortest round trip is
kept (it has the tightest bound), likewise at the end; two such points give the
offset and the drift between them (clocks of two machines run at slightly
different rates). Ranks sync with their neighbour in the ring, so rank k is mapped
through k-1, ..., 1 onto rank 0, and the bounds add up along the chain. The bound
holds if each leg of an exchange took at least zero time, which nothing can beat.
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


def fit(exchanges: Sequence[Exchange]) -> ClockMap:
    """The peer's clock onto ours from exchanges at the start and (if any) the end."""
    start = [e for e in exchanges if e.when == "start"] or list(exchanges)
    end = [e for e in exchanges if e.when == "end"]
    a = best(start)
    if not end:
        return ClockMap(a.offset_ns, 0.0, a.midpoint_ns, a.bound_ns, len(exchanges))
    b = best(end)
    span = b.midpoint_ns - a.midpoint_ns
    drift = (b.offset_ns - a.offset_ns) / span if span > 0 else 0.0
    return ClockMap(a.offset_ns, drift, a.midpoint_ns, max(a.bound_ns, b.bound_ns),
                    len(exchanges))


def rank_clocks(ranks: Sequence[RankInfo]) -> list[ClockMap]:
    """Each rank's clock onto rank 0's, through the chain of neighbours (by rank)."""
    by_rank = {r.rank: r for r in ranks}
    maps = [IDENTITY]
    for k in range(1, len(ranks)):
        prev = by_rank[k - 1]
        with_k = [e for e in prev.exchanges if e.peer == k]
        if not with_k:
            raise ValueError(f"rank {k - 1} made no clock exchange with rank {k}: "
                             "record every rank with unimem's distributed watch")
        maps.append(maps[k - 1].then(fit(with_k)))
    return maps
