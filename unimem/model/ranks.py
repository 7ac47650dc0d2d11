"""One rank of an ``mx.distributed`` job, as its recording carries it.

A job's ranks are separate processes, often on separate machines, each with its
own clock. To put them on one time axis each recording keeps who it was (rank,
world size, host, backend), where its times start on its own clock, and the raw
timestamps of ping-pong exchanges with its neighbour in the ring, made through
``mx.distributed`` itself at the start and the end of the recording. The offsets
are derived from them when recordings are merged (``analysis/clocks.py``), so the
measured stamps are kept, not a conclusion drawn from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Exchange:
    """One ping-pong with ``peer``, in nanoseconds of each side's own clock.

    This rank sent at ``t0`` (its clock), the peer received at ``t1`` and replied at
    ``t2`` (the peer's clock), and the reply arrived at ``t3`` (this rank's clock).
    A round of all_gather is written in the same terms (``capture/ranks.gathered``).
    """

    peer: int
    t0: int
    t1: int
    t2: int
    t3: int
    when: str = "start"  # "start" or "end" of the recording

    @property
    def offset_ns(self) -> float:
        """The peer's clock minus this rank's, assuming the two legs took as long."""
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2

    @property
    def delay_ns(self) -> int:
        """The round trip, less the time the peer held the message."""
        return (self.t3 - self.t0) - (self.t2 - self.t1)

    @property
    def bound_ns(self) -> float:
        """How wrong :attr:`offset_ns` can be: half the round trip (NTP's bound)."""
        return self.delay_ns / 2

    @property
    def interval_ns(self) -> tuple[int, int]:
        """Where the peer's clock minus ours must lie, if neither leg took negative time:
        the ping left before it arrived (``t1 - offset >= t0``) and the reply likewise
        (``t3 >= t2 - offset``). :attr:`offset_ns` is its middle, :attr:`bound_ns` half
        its width."""
        return self.t2 - self.t3, self.t1 - self.t0

    @property
    def midpoint_ns(self) -> float:
        return (self.t0 + self.t3) / 2


@dataclass(frozen=True)
class RankInfo:
    """Who recorded, and the stamps that tie its clock to its neighbour's."""

    rank: int
    size: int
    host: str
    backend: str
    origin_ns: int  # the recording's time zero on this rank's clock (perf_counter_ns)
    exchanges: tuple[Exchange, ...] = field(default_factory=tuple)  # as initiator
    # how the stamps were exchanged: "send/recv" ping-pongs with the neighbours, or
    # "all_gather" rounds (backends without send/recv), which rank 0 holds for everyone
    sync: str = "send/recv"

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "size": self.size, "host": self.host,
                "backend": self.backend, "origin_ns": self.origin_ns, "sync": self.sync,
                "exchanges": [[e.peer, e.t0, e.t1, e.t2, e.t3, e.when]
                              for e in self.exchanges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RankInfo:
        return cls(int(d["rank"]), int(d["size"]), str(d["host"]), str(d["backend"]),
                   int(d["origin_ns"]),
                   tuple(Exchange(int(p), int(a), int(b), int(c), int(e), str(w))
                         for p, a, b, c, e, w in d.get("exchanges", [])),
                   str(d.get("sync", "send/recv")))
