"""Clock alignment on synthetic clocks with known skews and drifts."""

from __future__ import annotations

import random

import pytest

from unimem.analysis.clocks import IDENTITY, fit, rank_clocks
from unimem.model.ranks import Exchange, RankInfo


class Clock:
    """A rank's clock: reads ``true * (1 + drift) + offset`` nanoseconds."""

    def __init__(self, offset: float, drift: float) -> None:
        self.offset, self.drift = offset, drift

    def read(self, true_ns: float) -> int:
        return round(true_ns * (1 + self.drift) + self.offset)


def exchanges(a: Clock, b: Clock, peer: int, at_ns: float, when: str, rng: random.Random,
              rounds: int = 8) -> list[Exchange]:
    """Ping-pongs from a to b around ``at_ns`` (true time), each leg 20-200 µs."""
    out = []
    t = at_ns
    for _ in range(rounds):
        go, hold, back = rng.uniform(2e4, 2e5), rng.uniform(1e3, 5e3), rng.uniform(2e4, 2e5)
        out.append(Exchange(peer, a.read(t), b.read(t + go), b.read(t + go + hold),
                            a.read(t + go + hold + back), when))
        t += go + hold + back + 1e5
    return out


@pytest.mark.parametrize("offset,drift", [(0.0, 0.0), (3.7e12, 0.0), (-5e9, 2e-5),
                                          (1e11, -4e-5)])
def test_a_peer_clock_maps_onto_ours_within_the_bound_it_reports(offset, drift):
    rng = random.Random(1)
    ours, theirs = Clock(1e9, 0.0), Clock(offset, drift)
    ex = (exchanges(ours, theirs, 1, 1e9, "start", rng)
          + exchanges(ours, theirs, 1, 61e9, "end", rng))  # a minute apart
    m = fit(ex)
    assert 0 < m.bound_ns <= 2e5 and m.exchanges == 16
    for true in (1e9, 30e9, 61e9):  # a moment during the recording, read on both clocks
        err = abs(m.to_ours(theirs.read(true)) - ours.read(true))
        assert err <= m.bound_ns + 1, (err, m.bound_ns)


def test_without_end_exchanges_the_offset_is_constant():
    rng = random.Random(2)
    m = fit(exchanges(Clock(0, 0), Clock(5e6, 0), 1, 1e9, "start", rng))
    assert m.drift == 0 and abs(m.offset_ns - 5e6) <= m.bound_ns


def test_ranks_chain_onto_rank_zero_and_their_bounds_add():
    rng = random.Random(3)
    clocks = [Clock(0, 0), Clock(2e9, 1e-5), Clock(-7e9, -3e-5)]
    infos = []
    for k, c in enumerate(clocks):
        ex: list[Exchange] = []
        if k + 1 < len(clocks):
            ex = (exchanges(c, clocks[k + 1], k + 1, 1e9, "start", rng)
                  + exchanges(c, clocks[k + 1], k + 1, 30e9, "end", rng))
        infos.append(RankInfo(k, 3, "h", "ring", c.read(1e9), tuple(ex)))
    maps = rank_clocks(infos)
    assert maps[0] == IDENTITY
    assert maps[2].bound_ns == pytest.approx(fit(infos[0].exchanges).bound_ns
                                             + fit(infos[1].exchanges).bound_ns)
    for true in (2e9, 20e9):
        err = abs(maps[2].to_ours(clocks[2].read(true)) - clocks[0].read(true))
        assert err <= maps[2].bound_ns + 2, (err, maps[2].bound_ns)


def test_a_missing_exchange_says_what_to_do():
    infos = [RankInfo(0, 2, "h", "ring", 0, ()), RankInfo(1, 2, "h", "ring", 0, ())]
    with pytest.raises(ValueError, match="made a clock exchange with rank 1"):
        rank_clocks(infos)


def test_exchange_arithmetic_is_ntps():
    e = Exchange(1, t0=100, t1=1160, t2=1170, t3=230)  # 60 ns each way, peer +1000 ns
    assert e.offset_ns == 1000 and e.delay_ns == 120 and e.bound_ns == 60


def test_lopsided_delays_intersect_to_a_bound_tighter_than_any_round_trip():
    """Fast out and slow back, then the other way (a loaded host's busy sockets): each
    exchange alone is off by half the difference; together they pin the offset."""
    ours, theirs = Clock(0, 0), Clock(7e6, 0)
    ex, t = [], 1e9
    for i in range(8):
        go, back = (2e4, 4e6) if i % 2 else (4e6, 2e4)
        ex.append(Exchange(1, ours.read(t), theirs.read(t + go), theirs.read(t + go + 1e3),
                           ours.read(t + go + 1e3 + back)))
        t += 1e7
    m = fit(ex)
    assert min(e.bound_ns for e in ex) > 2e6  # any one exchange: ±2 ms
    assert m.bound_ns <= 2e4 + 1  # all of them: ±20 µs, the fast legs
    assert abs(m.to_ours(theirs.read(3e9)) - ours.read(3e9)) <= m.bound_ns


def test_exchanges_that_contradict_each_other_fall_back_on_the_shortest_round_trip():
    ex = [Exchange(1, 0, 1100, 1110, 200), Exchange(1, 1000, 1200, 1210, 1250)]
    assert ex[1].interval_ns[1] < ex[0].interval_ns[0]  # disjoint: a clock stepped
    m = fit(ex)
    assert m.offset_ns == ex[0].offset_ns and m.bound_ns == ex[0].bound_ns == 95


def test_ranks_that_exchanged_with_rank_zero_map_directly_without_a_chain():
    """all_gather syncs: rank 0 holds an exchange with every rank, so bounds do not add."""
    rng = random.Random(4)
    clocks = [Clock(0, 0), Clock(2e9, 1e-5), Clock(-7e9, -3e-5)]
    ex = [e for k in (1, 2) for at, when in ((1e9, "start"), (30e9, "end"))
          for e in exchanges(clocks[0], clocks[k], k, at, when, rng)]
    infos = [RankInfo(0, 3, "h", "nccl", 0, tuple(ex)), RankInfo(1, 3, "h", "nccl", 0, ()),
             RankInfo(2, 3, "h", "nccl", 0, ())]
    maps = rank_clocks(infos)
    assert maps[2].bound_ns == fit([e for e in ex if e.peer == 2]).bound_ns
    for k in (1, 2):
        err = abs(maps[k].to_ours(clocks[k].read(20e9)) - clocks[0].read(20e9))
        assert err <= maps[k].bound_ns + 1
