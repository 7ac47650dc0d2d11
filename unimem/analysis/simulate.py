"""Predict a placement's run time by replaying how MLX runs a graph: a simulator.

MLX does not run a graph in program order. ``eval`` (``eval_impl`` in
``mlx/transforms.cpp``) builds a *tape* breadth first from the outputs, at most
``MLX_BFS_MAX_WIDTH`` (20) arrays wide before it goes a level deeper, and runs it
from the back: each primitive is handed, in that order, to its stream, and each
stream runs what it is handed in FIFO order. A primitive that reads an array made
on another stream waits for that stream's fence first, and on a CPU stream the
wait blocks the stream's worker. So a placement's time depends on that order: the
placement research behind unimem found the best of eight placements of a 4-group
program predicted 38% too slow by a program-order model, and the error halved
when the model replayed MLX's order.

:func:`tape_order` replicates the tape; :class:`Simulator` replays it (or an order
measured on the machine, which autoplace prefers: each primitive's host-side
dispatch is stamped natively) with a cost per primitive per stream and a hand-off
cost per cross-stream edge. :func:`search` finds the best assignments of groups to
streams for any predictor; :func:`fit_handoff` fits ``fixed + per_byte * bytes``.
It is a model: autoplace ranks with it and decides by measuring.

Source: https://github.com/ml-explore/mlx/blob/v0.32.1/mlx/transforms.cpp (eval_impl).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..model.graph import Graph
from ..model.placement import Handoff

BFS_MAX_WIDTH = 20  # MLX's default for MLX_BFS_MAX_WIDTH (mlx/utils.h)

Cost = Callable[[int, str], float]  # (node index, stream) -> seconds
HandoffCost = Callable[[str, str, int], float]  # (producer stream, consumer stream, bytes)


def tape_order(graph: Graph, max_width: int = BFS_MAX_WIDTH) -> list[int]:
    """Node indices in the order ``eval_impl`` hands them to their streams.

    The roots are the graph's outputs, in order (the arrays passed to ``eval``). A
    node is put on the tape once every reference to its outputs from the nodes above
    it has been seen (MLX counts references per array, siblings together); the tape is
    built breadth first, deferring a node's remaining inputs to a stack whenever 20 or
    more tape entries are waiting, and is run from its end.
    """
    producer = {aid: a.producer for aid, a in graph.arrays.items()}
    inputs = [[p for p in (producer[aid] for aid in n.inputs) if p is not None]
              for n in graph.nodes]
    roots = [p for p in (producer[aid] for aid in graph.outputs) if p is not None]
    # reference counts, as the DFS over the graph from the synchronizer records them
    count: dict[int, int] = {}
    seen: set[int] = set()
    stack: list[tuple[list[int], int]] = [(roots, 0)]
    while stack:
        ins, i = stack[-1]
        if i < len(ins):
            stack[-1] = (ins, i + 1)
            p = ins[i]
            count[p] = count.get(p, 0) + 1
            if p not in seen:
                seen.add(p)
                stack.append((inputs[p], 0))
            continue
        stack.pop()
    tape: list[int] = [-1]  # -1: the synchronizer, whose inputs are the roots
    deferred: list[tuple[int, int]] = []
    i = 0
    while i < len(tape) or deferred:
        if i >= len(tape):
            a, j = deferred.pop()
        else:
            a, j = tape[i], 0
            i += 1
        ins = roots if a == -1 else inputs[a]
        while j < len(ins):
            if len(tape) - i >= max_width:
                deferred.append((a, j))
                break
            p = ins[j]
            j += 1
            count[p] -= 1
            if count[p] == 0:
                tape.append(p)
    order = tape[:0:-1]  # run from the back; the synchronizer (tape[0]) is not a node
    placed = set(order)
    # nodes no output depends on (a graph of several evaluations): before the rest
    return [n.index for n in graph.nodes if n.index not in placed and not n.synthetic] + order


@dataclass(frozen=True)
class Schedule:
    """When each primitive would start and end, and the makespan (all in seconds)."""

    start: tuple[float, ...]  # per node index (0 for nodes not run)
    end: tuple[float, ...]
    makespan: float
    busy: Mapping[str, float]  # per stream: seconds of work


class Simulator:
    """Replays one graph under any placement; build once, :meth:`run` many times."""

    def __init__(self, graph: Graph, order: Sequence[int] | None = None) -> None:
        self.graph = graph
        producer = {aid: a.producer for aid, a in graph.arrays.items()}
        # per node: (producer node, bytes) of each input made inside the graph
        self.reads = [[(p, graph.arrays[aid].nbytes) for aid in n.inputs
                       if (p := producer[aid]) is not None] for n in graph.nodes]
        self.order = _dispatchable(self.reads, tape_order(graph) if order is None else order)

    def run(self, stream_of: Mapping[int, str], cost: Cost, handoff: HandoffCost,
            dispatch: Cost | None = None) -> Schedule:
        """The schedule when node ``i`` runs on ``stream_of[i]`` (nodes without a stream,
        such as eval's Synchronizer, are skipped). ``dispatch`` is the host's time to
        hand a node to its stream (MLX's eval thread does it, one node after another,
        in the order): a node starts no earlier than its dispatch ends."""
        n = len(self.graph.nodes)
        start, end = [0.0] * n, [0.0] * n
        free: dict[str, float] = {}
        busy: dict[str, float] = {}
        host = 0.0
        for i in self.order:
            stream = stream_of.get(i)
            if stream is None:
                continue
            ready = free.get(stream, 0.0)
            if dispatch is not None:
                host += dispatch(i, stream)
                ready = max(ready, host)
            for p, nbytes in self.reads[i]:
                src = stream_of.get(p)
                t = end[p]
                if src is not None and src != stream:
                    t += handoff(src, stream, nbytes)
                ready = max(ready, t)
            took = cost(i, stream)
            start[i], end[i] = ready, ready + took
            free[stream] = end[i]
            busy[stream] = busy.get(stream, 0.0) + took
        return Schedule(tuple(start), tuple(end), max(end, default=0.0), busy)


def _dispatchable(reads: Sequence[Sequence[tuple[int, int]]], order: Sequence[int]) -> list[int]:
    """``order`` made safe to replay: each node after its producers, otherwise as given
    (a measured order lacks primitives it could not time, such as ``Copy``: they go in
    where the given order allows, as early as their producers allow)."""
    rank: dict[int, float] = {n: k for k, n in enumerate(order)}
    missing = [n for n in range(len(reads)) if n not in rank]
    for n in missing:  # unranked nodes: just before their first reader, else at the end
        rank[n] = len(order) + n
    waiting = [len({p for p, _ in reads[n]}) for n in range(len(reads))]
    readers: list[list[int]] = [[] for _ in reads]
    for n, r in enumerate(reads):
        for p in {p for p, _ in r}:
            readers[p].append(n)
    for n in missing:
        first = min((rank[c] for c in readers[n] if c not in missing), default=None)
        if first is not None:
            rank[n] = first - 0.5
    ready = [(rank[n], n) for n in range(len(reads)) if waiting[n] == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for c in readers[n]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (rank[c], c))
    return out


Assignment = dict[str, str]  # group -> target stream


def search(groups: Sequence[str], targets: Sequence[str],
           predict: Callable[[Mapping[str, str]], float], *, top: int = 5,
           exhaustive_limit: int = 4096) -> list[tuple[Assignment, float]]:
    """The ``top`` assignments of groups to targets with the lowest predicted time.

    Exhaustive while ``len(targets) ** len(groups) <= exhaustive_limit`` (as Tarnawski
    et al., NeurIPS 2020, argue small placement problems should be solved exactly);
    beyond, a greedy seed in the spirit of HEFT (Topcuoglu et al., 2002: each group in
    turn to the target that predicts the earliest finish) improved by local search
    (moving one group, or swapping two groups' targets, while it helps). The
    all-on-one-target assignments are always among those scored.
    """
    scored: dict[tuple[str, ...], float] = {}

    def score(targets_of: tuple[str, ...]) -> float:
        if targets_of not in scored:
            scored[targets_of] = predict(dict(zip(groups, targets_of)))
        return scored[targets_of]

    for t in targets:
        score((t,) * len(groups))
    if len(targets) ** len(groups) <= exhaustive_limit:
        for combo in itertools.product(targets, repeat=len(groups)):
            score(combo)
    else:
        uniform: list[tuple[str, ...]] = [(t,) * len(groups) for t in targets]
        seed: tuple[str, ...] = min(uniform, key=score)
        current = list(seed)
        for g in range(len(groups)):  # greedy seed, group by group
            current[g] = min(targets, key=lambda t: score((*current[:g], t, *current[g + 1:])))
        improved = True
        while improved:
            improved = False
            best = score(tuple(current))
            moves = [(g, t) for g in range(len(groups)) for t in targets if t != current[g]]
            for g, t in moves:
                trial = (*current[:g], t, *current[g + 1:])
                if score(trial) < best:
                    current, best, improved = list(trial), score(trial), True
            for a, b in itertools.combinations(range(len(groups)), 2):
                if current[a] == current[b]:
                    continue
                trial_list = list(current)
                trial_list[a], trial_list[b] = current[b], current[a]
                if score(tuple(trial_list)) < best:
                    current, best, improved = trial_list, score(tuple(trial_list)), True
    ranked = sorted(scored.items(), key=lambda kv: (kv[1], kv[0]))
    return [(dict(zip(groups, k)), v) for k, v in ranked[:top]]


def fit_handoff(src: str, dst: str, samples: Sequence[tuple[int, float]]) -> Handoff:
    """Least squares ``seconds = fixed + per_byte * nbytes``, both kept >= 0 (when one
    would go negative it is 0 and the other is refitted alone)."""
    if not samples:
        return Handoff(src, dst, 0.0, 0.0, 0)
    n = len(samples)
    xs = [float(b) for b, _ in samples]
    ys = [t for _, t in samples]
    mx_, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx_) ** 2 for x in xs)
    slope = 0.0 if sxx == 0 else sum((x - mx_) * (y - my) for x, y in zip(xs, ys)) / sxx
    fixed = my - slope * mx_
    if slope < 0:
        slope, fixed = 0.0, my
    if fixed < 0:
        sx2 = sum(x * x for x in xs)
        fixed, slope = 0.0, (max(0.0, sum(x * y for x, y in zip(xs, ys)) / sx2) if sx2 else 0.0)
    return Handoff(src, dst, max(fixed, 0.0), slope, n)
