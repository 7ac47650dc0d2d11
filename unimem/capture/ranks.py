"""Which rank this process is, and exchanges of clock stamps that tie the ranks' clocks.

The exchanges go through ``mx.distributed`` itself, so they use the same transport
as the job's collectives. Where the backend has ``send``/``recv`` (ring, MPI,
JACCL) they are ping-pongs with the neighbours in the ring (rank k with k-1 and
k+1: the ring backend only sends to neighbours), in a chain: rank k answers k-1's
pings first, then pings k+1, so no two ranks wait for each other. MLX's NCCL
backend has neither ("[nccl] Send not supported in NCCL backend."), so there every
rank stamps its clock around rounds of ``all_gather``: a looser bound (half the
time both ranks spent in the call, not half a round trip; see :func:`gathered`),
but with rank 0 directly, not through a chain. Stamps are
``time.perf_counter_ns()``, the clock recordings are made on, sent as int64.
"""

from __future__ import annotations

import os
import socket
from time import perf_counter_ns
from typing import Any

import mlx.core as mx

from ..model.ranks import Exchange, RankInfo

ROUNDS = 8  # exchanges per neighbour and per sync, intersected (analysis/clocks.py)
SYNCS = ("send/recv", "all_gather")


def group() -> Any | None:
    """The job's group when this process is one of several ranks, else None."""
    if not mx.distributed.is_available():
        return None
    g = mx.distributed.init()
    return g if g.size() > 1 else None


def backend() -> str:
    """The backend ``mlx.launch`` set this rank up for, as its environment says: the ring
    backend's launcher sets ``MLX_HOSTFILE`` and ``MLX_RANK``; MPI sets its own ranks."""
    env = os.environ
    if "MLX_HOSTFILE" in env and "MLX_RANK" in env:
        return "ring"
    if "OMPI_COMM_WORLD_RANK" in env or "PMI_RANK" in env:
        return "mpi"
    if "NCCL_HOST_IP" in env and "MLX_WORLD_SIZE" in env:
        return "nccl"
    if "MLX_JACCL_COORDINATOR" in env:
        return "jaccl"
    return env.get("MLX_DISTRIBUTED_BACKEND", "unknown")


def method(backend: str) -> str:
    """How this backend's ranks exchange stamps: NCCL has no send/recv in MLX."""
    return "all_gather" if backend == "nccl" else "send/recv"


def sync(g: Any, when: str, how: str, rounds: int = ROUNDS) -> list[Exchange]:
    """Exchange stamps with the other ranks; returns those this rank holds."""
    return gathered(g, when, rounds) if how == "all_gather" else pingpong(g, when, rounds)


def pingpong(g: Any, when: str, rounds: int) -> list[Exchange]:
    """Ping-pong with the neighbours; returns the exchanges this rank initiated."""
    rank, size = g.rank(), g.size()
    stamp = mx.array([0, 0], dtype=mx.int64)
    mx.eval(mx.distributed.all_sum(mx.array([1.0]), group=g))  # everybody is here
    if rank > 0:  # answer rank-1's pings
        for _ in range(rounds):
            mx.eval(mx.distributed.recv_like(stamp, rank - 1, group=g))
            t1 = perf_counter_ns()
            t2 = perf_counter_ns()
            mx.eval(mx.distributed.send(mx.array([t1, t2], dtype=mx.int64), rank - 1,
                                        group=g))
    out = []
    if rank + 1 < size:  # ping rank+1
        for _ in range(rounds):
            t0 = perf_counter_ns()
            mx.eval(mx.distributed.send(mx.array([t0, 0], dtype=mx.int64), rank + 1,
                                        group=g))
            reply = mx.distributed.recv_like(stamp, rank + 1, group=g)
            mx.eval(reply)
            t3 = perf_counter_ns()
            t1, t2 = (int(v) for v in reply.tolist())  # type: ignore[union-attr,arg-type]
            out.append(Exchange(rank + 1, t0, t1, t2, t3, when))
    return out


def gathered(g: Any, when: str, rounds: int) -> list[Exchange]:
    """Every rank reads its clock before and after each of ``rounds`` all_gathers, then
    the stamps are gathered; rank 0 holds an exchange with every other rank.

    No rank's all_gather returns before every rank has joined it, so rank k's stamp
    before a round precedes rank 0's after it, and rank 0's before precedes rank k's
    after. As an :class:`Exchange` (whose interval is ``[t2 - t3, t1 - t0]``):
    ``t0`` = 0's before, ``t1`` = k's after, ``t2`` = k's before, ``t3`` = 0's after.
    Its bound is half of both ranks' times in the call together, where a ping-pong's is
    half of one round trip less the peer's turnaround: the ranks' arrivals differ, and
    the one that came first waited in the call for the other.
    """
    token = mx.array([0], dtype=mx.int64)
    mx.eval(mx.distributed.all_sum(mx.array([1.0]), group=g))  # everybody is here
    stamps = []
    for _ in range(rounds):
        before = perf_counter_ns()
        mx.eval(mx.distributed.all_gather(token, group=g))
        stamps.append([before, perf_counter_ns()])
    every = mx.distributed.all_gather(mx.array(stamps, dtype=mx.int64), group=g)
    mx.eval(every)
    if g.rank() != 0:
        return []
    rows: list[list[int]] = every.tolist()  # type: ignore[assignment]
    return [Exchange(k, rows[i][0], rows[k * rounds + i][1], rows[k * rounds + i][0],
                     rows[i][1], when)
            for k in range(1, g.size()) for i in range(rounds)]


def info(g: Any, origin_ns: int, exchanges: list[Exchange], how: str) -> RankInfo:
    return RankInfo(g.rank(), g.size(), socket.gethostname(), backend(), origin_ns,
                    tuple(exchanges), how)
