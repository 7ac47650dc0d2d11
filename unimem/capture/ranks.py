"""Which rank this process is, and ping-pongs with its neighbours to tie the clocks.

The exchanges go through ``mx.distributed`` itself (``send``/``recv``), so they use
the same transport as the job's collectives, whatever the backend. Each rank talks
only to its neighbours in the ring (rank k with k-1 and k+1: the ring backend's
links), in a chain: rank k answers k-1's pings first, then pings k+1, so no two
ranks wait for each other. Stamps are ``time.perf_counter_ns()``, the clock
recordings are made on, sent as int64.
"""

from __future__ import annotations

import os
import socket
from time import perf_counter_ns
from typing import Any

import mlx.core as mx

from ..model.ranks import Exchange, RankInfo

ROUNDS = 8  # exchanges per neighbour and per sync: the shortest round trip is kept


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
    return env.get("MLX_DISTRIBUTED_BACKEND", "unknown")


def sync(g: Any, when: str, rounds: int = ROUNDS) -> list[Exchange]:
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


def info(g: Any, origin_ns: int, exchanges: list[Exchange]) -> RankInfo:
    return RankInfo(g.rank(), g.size(), socket.gethostname(), backend(), origin_ns,
                    tuple(exchanges))
