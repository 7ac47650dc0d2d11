"""What can be placed as one thing, and what each thing costs where: found by running it.

Autoplace works on *groups* (a module of the model and everything it makes,
backward pass included), not on single primitives. Which primitive belongs to
which group is not guessed from Python calls: each group is put on a stream of
its own and the graph is traced, so MLX itself says (the stream it gave each
primitive) - C++-made ops and the backward pass included. The same labelled run,
evaluated natively, gives each primitive's duration measured at both ends on its
stream; a group's cost on a device is the sum over its primitives.

Hand-offs between devices (and between two streams of one device) are measured
with a small producer/consumer pair at a few sizes and fitted as
``fixed + per_byte * bytes``, as Baechi does (Jeon et al., SoCC 2020).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import mlx.core as mx

from ..analysis.simulate import fit_handoff
from ..capture import cuda_kernels, native, native_run
from ..capture.call import Call, bind
from ..capture.gpu_kernels import GpuKernels
from ..capture.streams import parse_name, resolve
from ..errors import ArgumentValueError
from ..model.graph import Graph
from ..model.placement import Group, Handoff
from .plan import Plan
from .rules import ALIASES

REST = "(rest)"  # every op made outside the groups: the "*" rule's
KINDS = ("module", "op", "site", "region")  # what a group can be: a rule's selector kind
LIMIT = 12  # groups offered at most (the busiest): 2**12 placements can be simulated


def find_model(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any | None:
    """The first ``mlx.nn.Module`` (anything with ``named_modules``) among a call's
    arguments: the model whose modules are the groups."""
    return next((a for a in (*args, *kwargs.values())
                 if callable(getattr(a, "named_modules", None))), None)


def module_groups(model: Any) -> list[str]:
    """The model's outermost modules (lists expanded: ``layers.0``, ``layers.1``, ``ln``);
    a model with one child is looked into until there are several."""
    paths = [p for p, _ in model.named_modules() if p]
    groups = _outermost(paths)
    while len(groups) == 1:
        inner = _outermost([p for p in paths if p.startswith(groups[0] + ".")])
        if not inner:
            break
        groups = inner
    return sorted(groups, key=_natural)


def _outermost(paths: Sequence[str]) -> list[str]:
    every = set(paths)
    return [p for p in paths
            if not any(p[:i] in every for i in range(len(p)) if p[i] == ".")]


def _natural(path: str) -> list[Any]:
    return [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in path.split(".")]


def discover(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             model: Any, kind: str, limit: int = LIMIT) -> list[str]:
    """The groups of one kind, busiest first: a model's outermost modules, or the ops,
    lines or regions that one run of the call made ops at (counted by a census plan)."""
    if kind not in KINDS:
        raise ArgumentValueError(f"groups must be one of {KINDS} or a list of module paths, "
                                 f"got {kind!r}")
    if kind == "module":
        if model is None:
            raise ArgumentValueError("module groups need the model: pass model=")
        return module_groups(model)
    plan = Plan({"*": "cpu"}, model, census=True)
    bind(fun, args, kwargs, plan).run()
    assert plan.census is not None
    seen: Counter[str] = Counter()
    for where, n in plan.census.items():
        if kind == "op":
            seen[canonical(where.op)] += n
        elif kind == "site" and where.site is not None:
            seen[f"{Path(where.site[0]).name}:{where.site[1]}"] += n
        elif kind == "region" and where.regions:
            seen[where.regions[0]] += n
    return [g for g, _ in seen.most_common(limit)]


def canonical(op: str) -> str:
    """An op's name as rules spell it: ``matmul`` for ``@`` and ``addmm``, ``add`` for
    ``+``; other names as MLX calls them."""
    for name, spellings in ALIASES.items():
        if op in spellings and name not in ("mul", "sub", "div"):
            return name
    return op


def selector(kind: str, group: str) -> str:
    """The rule selector that places one group: ``module:layers.0``, ``op:exp``, ..."""
    return f"{kind}:{group}"


def labelled_rules(groups: Sequence[str], device: str, kind: str = "module"
                   ) -> dict[str, str]:
    """Rules that put each group on a stream of its own on ``device`` (the rest on its
    default stream), so that a trace says which group made each primitive."""
    rules = {"*": device}
    for i, g in enumerate(groups):
        rules[selector(kind, g)] = f"{device}:{i + 1}"
    return rules


@dataclass
class Membership:
    """Each primitive's group, read off a trace of the labelled placement."""

    graph: Graph
    group_of: list[str]  # per node index

    def groups(self, names: Sequence[str]) -> list[Group]:
        """Primitive counts and the bytes crossing each group's boundary."""
        count = dict.fromkeys(names, 0)
        bytes_in = dict.fromkeys(names, 0)
        bytes_out = dict.fromkeys(names, 0)
        for node in self.graph.primitives:
            count[self.group_of[node.index]] += 1
        for e in self.graph.edges:
            if e.src is None or self.graph.nodes[e.dst].synthetic:
                continue
            a, b = self.group_of[e.src], self.group_of[e.dst]
            if a != b:
                bytes_out[a] += e.nbytes
                bytes_in[b] += e.nbytes
        return [Group(n, count[n], bytes_in[n], bytes_out[n]) for n in names]


def membership(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               model: Any, groups: Sequence[str], device: str = "cpu", kind: str = "module"
               ) -> Membership:
    """Trace the call with every group on its own stream: MLX's answer to which group
    made each primitive (the rest is :data:`REST`)."""
    plan = Plan(labelled_rules(groups, device, kind), model)
    call = bind(fun, args, kwargs, plan)
    if not native.available():
        raise native.NativeUnavailableError(
            f"autoplace needs the native probe to see every primitive: "
            f"{native.why_unavailable()}")
    captured = native_run.run(call, evaluate=False)
    graph = native_run.to_graph(captured, call.title, call.placement_names, "")
    by_lane = {device: REST, **{f"{device}:{i + 1}": g for i, g in enumerate(groups)}}
    group_of = []
    for node in graph.nodes:
        group_of.append(by_lane.get(node.lane, REST))
    return Membership(graph, group_of)


@dataclass
class Costs:
    """What the labelled runs measured: seconds per primitive, and the order MLX
    dispatched the timed ones in (the host-side stamps of the last run)."""

    seconds: list[float]  # per node index
    order: list[int]  # node indices


def node_costs(call: Call, nodes: int, *, runs: int = 3) -> Costs:
    """Seconds per primitive (by node index), the median of ``runs`` native runs, each
    primitive measured at both ends on its stream (CPU) or by CUPTI (GPU kernels)."""
    per_run: list[list[float]] = []
    order: list[int] = []
    for _ in range(runs):
        captured = native_run.run(call)
        ids = [i for g in captured.graphs for i in g.ids]
        if len(ids) != nodes:
            raise ArgumentValueError(
                f"the call made {len(ids)} primitives in one run and {nodes} in another: "
                "autoplace needs a function that builds the same graph each time it runs")
        took = {r.id: r.end - r.start for r in captured.records}  # CPU: ns on one clock
        index = {nid: k for k, nid in enumerate(ids)}
        order = [index[r.id] for r in sorted(captured.records, key=lambda r: r.host_begin)
                 if r.id in index]
        costs = [took.get(i, 0) / 1e9 for i in ids]
        if captured.kernels is not None and native_run.gpu_primitives(captured):
            kernels = GpuKernels(captured.kernels, captured.graphs)
            for k, i in enumerate(ids):
                for run in kernels.of(i):
                    costs[k] += (run.end - run.start) / 1e9
        per_run.append(costs)
    return Costs([statistics.median(c) for c in zip(*per_run)], order)


def check_devices(targets: Sequence[str]) -> list[str]:
    """The devices the targets are on (resolving each: a GPU target where there is none
    fails here, clearly); GPU costs need CUPTI to be measured per primitive."""
    devices = sorted({parse_name(t).device for t in targets})
    for t in targets:
        resolve(t, what=f"target {t!r}")
    if "gpu" in devices and not cuda_kernels.available():
        raise ArgumentValueError(
            "autoplace measures each GPU primitive by its kernels, which needs MLX's CUDA "
            f"build with cupti-python: {cuda_kernels.why_unavailable()}")
    return devices


def measure_handoffs(devices: Sequence[str], *, sizes: Sequence[int] = (1 << 12, 1 << 20,
                     1 << 24), rounds: int = 15) -> list[Handoff]:
    """The cost of handing an array from a stream on one device to a stream on another
    (or to a second stream of the same device), fitted over ``sizes`` bytes.

    Each sample is the median extra time of ``producer -> consumer`` across the two
    streams over the same pair on one stream, ``rounds`` interleaved runs each.
    """
    out = []
    for src in devices:
        for dst in devices:
            a = resolve(f"{src}:1" if src == dst else src)
            b = resolve(f"{dst}:2" if src == dst else dst)
            samples = []
            for size in sizes:
                x = mx.ones((size // 4,), stream=a)
                mx.eval(x)
                cross, same = [], []
                for _ in range(rounds + 2):
                    cross.append(_pair(x, a, b))
                    same.append(_pair(x, a, a))
                extra = statistics.median(cross[2:]) - statistics.median(same[2:])
                samples.append((size, max(extra, 0.0)))
            out.append(fit_handoff(src, dst, samples))
    return out


def _pair(x: mx.array, producer: mx.Stream, consumer: mx.Stream) -> float:
    t = perf_counter()
    y = mx.add(x, 1.0, stream=producer)
    z = mx.multiply(y, 2.0, stream=consumer)
    mx.eval(z)
    return perf_counter() - t
