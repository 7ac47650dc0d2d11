"""Automatic placement, verified by measurement: ``um.autoplace(step, model, x, y)``.

MLX's maintainers advise starting on one stream and offloading only after
profiling (https://github.com/ml-explore/mlx/issues/868); users find that moving
work often loses to the cost of switching (mlx#1979). Autoplace does that
profiling for any code with an ``mlx.nn`` model:

1. **groups**: the model's outermost modules (or the paths given), each with
   everything it makes, backward pass included, plus the rest of the program;
   membership read off a trace with every group on a stream of its own;
2. **costs**: each primitive's duration on each target device, measured natively
   in context (the same labelled run, evaluated), and a hand-off cost per device
   pair fitted from measured hand-offs;
3. **prediction**: a simulator that replays MLX's own dispatch order and stream
   FIFOs (``analysis/placement.py``) scores every assignment of groups to targets
   (exhaustively up to a few thousand, else a HEFT seed plus local search);
4. **measurement**: the most promising predictions are run side by side with the
   trivial placements and every placement the user already tried (interleaved
   rounds, medians and IQRs), and the returned placement is the best *measured*
   one. A predicted placement is taken only when it beats the best hand placement
   by more than ``delta`` and beyond the IQRs; otherwise the best hand placement is
   returned, and the ledger says so. Outputs are checked against the unplaced run.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from time import perf_counter
from typing import Any

import mlx.core as mx

from .analysis.simulate import Simulator, search
from .capture.call import Call, bind, flatten_arrays
from .capture.streams import gpu_available, parse_name
from .checks import check_int, given
from .errors import ArgumentTypeError, ArgumentValueError
from .model.graph import Graph
from .model.placement import Candidate, Group, Handoff, Ledger, Rules
from .model.recording import Timing
from .model.text import fmt_time, plural
from .placing import groups as grouping
from .placing.groups import REST
from .placing.plan import Plan
from .placing.rules import normalise

Timer = Callable[[Call], float]  # seconds for one plain run of a placed call


def autoplace(
    fun: Callable[..., Any],
    *args: Any,
    model: Any = None,
    groups: str | Sequence[str] = "module",
    targets: Sequence[str] | None = None,
    tried: Mapping[str, Plan | Mapping[str, str]] | None = None,
    top: int = 4,
    rounds: int = 10,
    warmup: int = 2,
    delta: float = 0.02,
    timer: Timer | None = None,
    **kwargs: Any,
) -> Ledger:
    """Find the fastest measured placement of ``fun(*args, **kwargs)``'s module groups.

    ``model`` is the ``mlx.nn.Module`` whose modules are placed (default: the first
    argument that is one). ``targets`` are stream names (default: ``cpu`` and ``gpu``
    where there is a GPU, else ``cpu`` and ``cpu:1``, two CPU streams). ``tried`` are
    the hand placements to beat, by label. Returns the :class:`Ledger`: every
    candidate predicted and measured, and ``ledger.rules`` for ``um.place``.
    """
    model = _find_model(model, args, kwargs)
    names = grouping.module_groups(model) if groups == "module" else _check_groups(groups,
                                                                                   model)
    targets = tuple(targets or (("cpu", "gpu") if gpu_available() else ("cpu", "cpu:1")))
    if len(set(targets)) < 2:
        raise ArgumentValueError(f"targets must name at least two streams, got {targets}")
    check_int("top", top, minimum=0, meaning="predicted placements measured")
    check_int("rounds", rounds, minimum=3, meaning="interleaved rounds of plain runs")
    check_int("warmup", warmup, minimum=0, meaning="untimed runs of each placement first")
    if not isinstance(delta, (int, float)) or not 0 <= delta < 1:
        raise ArgumentValueError(f"delta must be a fraction in [0, 1), got {given(delta)}")
    devices = grouping.check_devices(targets)
    hand = {label: _as_rules(p) for label, p in (tried or {}).items()}

    everything = [*names, REST]
    skeleton = parse_name(targets[0]).device  # the graph predictions are made on
    members = {d: grouping.membership(fun, args, kwargs, model, names, d) for d in devices}
    member = members[skeleton]
    measured_costs = {}
    for device in devices:
        call = bind(fun, args, kwargs, Plan(grouping.labelled_rules(names, device), model))
        for _ in range(max(warmup, 1)):
            _run(call)
        measured_costs[device] = grouping.node_costs(call, len(members[device].graph.nodes))
    # MLX's dispatch order, as measured: placement does not change it
    order = measured_costs[skeleton].order or None
    costs = {d: _on_skeleton(member, members[d], measured_costs[d].seconds,
                             measured_costs[skeleton].seconds) for d in devices}
    handoffs = grouping.measure_handoffs(devices)
    build = _build_time(bind(fun, args, kwargs, Plan({"*": targets[0]}, model)))
    predictor = _Predictor(member.graph, costs, handoffs, order, build)
    # the host's time per primitive beyond the primitives' own (MLX's bookkeeping; on a
    # GPU, encoding and launching): calibrated per device from plain runs all on it
    for device in devices:
        t = next(t for t in targets if parse_name(t).device == device)
        alone_call = bind(fun, args, kwargs, Plan({"*": t}, model))
        walls = [(timer or _time_once)(alone_call) for _ in range(max(warmup, 1) + 7)]
        wall = statistics.median(walls[max(warmup, 1):])
        alone = predictor.makespan(dict.fromkeys((n.index for n in member.graph.primitives), t))
        predictor.dispatch[device] = max(0.0, wall - alone) / max(len(member.graph.primitives), 1)

    def predict_assignment(assignment: Mapping[str, str]) -> float:
        stream_of = {n.index: assignment[member.group_of[n.index]]
                     for n in member.graph.primitives}
        return predictor.makespan(stream_of)

    candidates: dict[str, Candidate] = {}
    for t in targets:
        candidates[f"all {t}"] = Candidate(f"all {t}", (("*", t),), "trivial",
                                           dict.fromkeys(everything, t))
    for label, rules in hand.items():
        candidates[label] = Candidate(label, rules, "hand", _assignment_of(rules, names))
    seen = {_key(c.assignment) for c in candidates.values() if c.assignment}
    tried_rules = {c.rules for c in candidates.values()}
    ranked = search(everything, list(targets), predict_assignment,
                    top=top + len(targets) + len(hand))
    for assignment, _ in ranked:
        if (_key(assignment) in seen or _rules_of(assignment, names) in tried_rules
                or sum(c.source == "predicted" for c in candidates.values()) >= top):
            continue
        seen.add(_key(assignment))
        label = f"predicted #{sum(c.source == 'predicted' for c in candidates.values()) + 1}"
        candidates[label] = Candidate(label, _rules_of(assignment, names), "predicted",
                                      dict(assignment))
    calls = {label: bind(fun, args, kwargs, Plan(c.rules, model))
             for label, c in candidates.items()}
    # predicted from its groups' places where it has them, else from where a trace of its
    # plan put each node (hand rules of any kind), when that graph is the skeleton's
    for label, c in candidates.items():
        predicted = (predict_assignment(c.assignment) if c.assignment
                     else predictor.of_call(calls[label]))
        candidates[label] = _with(c, predicted=predicted)
    measured = measure(calls, rounds=rounds, warmup=warmup, timer=timer or _time_once)
    for label, timing in measured.items():
        candidates[label] = _with(candidates[label], measured=timing)

    chosen, beyond, verdict = choose(list(candidates.values()), delta)
    notes = [verdict, _check_outputs(fun, args, kwargs, Plan(candidates[chosen].rules, model))]
    host = ", ".join(f"{d} {fmt_time(h)}" for d, h in predictor.dispatch.items())
    notes.append(f"predicted: building the graph in Python (measured, {fmt_time(build)}) plus "
                 "MLX's run simulated from per-primitive costs measured natively in context "
                 "(one labelled run per device, median of 3), MLX's measured dispatch order, "
                 "fitted hand-off costs and the host's time per primitive beyond the "
                 f"primitives' own ({host}; calibrated on plain runs all on each device); "
                 "measured: plain runs, interleaved, after warm-up")
    if len(devices) > 1:
        notes.append(f"MLX builds another graph on each device (fused kernels where the CPU "
                     f"runs fallbacks): predictions run on the {skeleton}'s graph, each group's "
                     "measured total on another device spread over its nodes")
    group_rows = member.groups(everything)
    per_target = {g: {t: sum(costs[parse_name(t).device][n.index]
                             for n in member.graph.primitives if member.group_of[n.index] == g)
                      for t in targets} for g in everything}
    group_rows = [Group(g.name, g.primitives, g.bytes_in, g.bytes_out, per_target[g.name])
                  for g in group_rows]
    return Ledger(getattr(fun, "__name__", "the call"), targets, group_rows, handoffs,
                  list(candidates.values()), chosen, beyond, notes)


def choose(candidates: Sequence[Candidate], delta: float) -> tuple[str, bool, str]:
    """The measured placement to return: the best hand (or trivial) one, unless a
    predicted one beats it by more than ``delta`` and beyond both IQRs."""
    hand = [c for c in candidates if c.source != "predicted" and c.measured is not None]
    pred = [c for c in candidates if c.source == "predicted" and c.measured is not None]
    assert hand, "the trivial placements are always measured"
    base = min(hand, key=lambda c: c.measured.median if c.measured else float("inf"))
    assert base.measured is not None
    if pred:
        best = min(pred, key=lambda c: c.measured.median if c.measured else float("inf"))
        assert best.measured is not None
        if (best.measured.median < base.measured.median * (1 - delta)
                and best.measured.q3 < base.measured.q1):
            gain = base.measured.median / best.measured.median
            return best.label, True, (f"{best.label} beat the best hand placement "
                                      f"({base.label}) {gain:.2f}x, beyond noise")
    return base.label, False, (f"no predicted placement beat the best hand placement beyond "
                               f"noise: returned {base.label}, as measured")


def measure(calls: Mapping[str, Call], *, rounds: int, warmup: int,
            timer: Timer) -> dict[str, Timing]:
    """Plain runs of every placement, interleaved round by round (each round starting at
    a different one), so that drifts of the machine fall on all of them alike. Each timed
    run follows an untimed one of the same placement: a loop runs one placement over and
    over, and a run right after another placement's pays for the switch (on the H200 an
    all-GPU step measured 3x its steady time right after a CPU-heavy placement)."""
    labels = list(calls)
    for label in labels:
        for _ in range(warmup):
            timer(calls[label])
    samples: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for k in range(len(labels)):
            label = labels[(r + k) % len(labels)]
            timer(calls[label])  # settle into this placement
            samples[label].append(timer(calls[label]))
    return {label: Timing(tuple(s), warmup) for label, s in samples.items()}


class _Predictor:
    """Makespans from the simulator, with costs per node per device and fitted hand-offs."""

    def __init__(self, graph: Graph, costs: Mapping[str, list[float]],
                 handoffs: Sequence[Handoff], order: Sequence[int] | None,
                 build: float) -> None:
        self.graph, self.costs, self.build = graph, costs, build
        self.dispatch: dict[str, float] = {}  # device -> host seconds per primitive
        self.sim = Simulator(graph, order)
        self.fits = {(h.src, h.dst): h for h in handoffs}
        self.device: dict[str, str] = {}  # stream name -> device

    def _device(self, stream: str) -> str:
        d = self.device.get(stream)
        if d is None:
            d = self.device[stream] = parse_name(stream).device
        return d

    def makespan(self, stream_of: Mapping[int, str]) -> float:
        def cost(node: int, stream: str) -> float:
            return self.costs[self._device(stream)][node]

        def handoff(src: str, dst: str, nbytes: int) -> float:
            return self.fits[(self._device(src), self._device(dst))].cost(nbytes)

        def dispatch(node: int, stream: str) -> float:
            return self.dispatch.get(self._device(stream), 0.0)

        run = self.sim.run(stream_of, cost, handoff, dispatch if self.dispatch else None)
        return self.build + float(run.makespan)

    def of_call(self, call: Call) -> float | None:
        """The prediction for any placed call: trace it, take each node's real stream."""
        from .profiler import trace_call

        graph = trace_call(call)
        if [n.name for n in graph.nodes] != [n.name for n in self.graph.nodes]:
            return None  # another graph (the rules changed what runs): no prediction
        return self.makespan({n.index: n.lane for n in graph.primitives})


def _on_skeleton(skeleton: grouping.Membership, other: grouping.Membership,
                 seconds: Sequence[float], skeleton_seconds: Sequence[float]) -> list[float]:
    """Costs measured on another device's graph, carried onto the skeleton's nodes.

    MLX builds a different graph per device (fused kernels on a GPU where the CPU runs
    a fallback of several primitives), so a group's measured total on that device is
    spread over the group's skeleton nodes in proportion to their skeleton costs: each
    group's total per device is measured, its shape inside the group is derived.
    """
    if other is skeleton:
        return list(seconds)
    total: defaultdict[str, float] = defaultdict(float)
    for n in other.graph.primitives:
        total[other.group_of[n.index]] += seconds[n.index]
    base: defaultdict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    for n in skeleton.graph.primitives:
        base[skeleton.group_of[n.index]] += skeleton_seconds[n.index]
        count[skeleton.group_of[n.index]] += 1
    out = [0.0] * len(skeleton.graph.nodes)
    for n in skeleton.graph.primitives:
        g = skeleton.group_of[n.index]
        out[n.index] = (total[g] * skeleton_seconds[n.index] / base[g] if base[g] > 0
                        else total[g] / count[g])
    return out


def _run(call: Call) -> None:
    args, kwargs = call.bound()
    mx.eval(call.outputs_of(call.fun(*args, **kwargs)))


def _build_time(call: Call, runs: int = 5) -> float:
    """Median seconds to build the graph in Python (the call, no evaluation): host time
    that every placement pays before MLX runs anything."""
    args, kwargs = call.bound()
    samples = []
    for _ in range(runs):
        t = perf_counter()
        result = call.fun(*args, **kwargs)
        samples.append(perf_counter() - t)
        del result
    return statistics.median(samples)


def _time_once(call: Call) -> float:
    args, kwargs = call.bound()
    t = perf_counter()
    mx.eval(call.fun(*args, **kwargs))
    return perf_counter() - t


def _check_outputs(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                   plan: Plan) -> str:
    """Compare the chosen placement's outputs with the unplaced run's (same random seed).

    Devices compute differently in the last bits (a GPU's float32 matmul may round
    through TF32, and sums run in another order), so where the placement uses a device
    the unplaced run did not, the tolerance is TF32's: 1e-2 of an output's largest
    value; else 1e-4.
    """
    mx.random.seed(0)
    plain = flatten_arrays(fun(*args, **kwargs))
    mx.random.seed(0)
    with plan:
        placed = flatten_arrays(fun(*args, **kwargs))
    mx.eval(plain, placed)
    if len(plain) != len(placed) or any(a.shape != b.shape for a, b in zip(plain, placed)):
        return "WARNING: the chosen placement returns other arrays than the unplaced run"
    here = "gpu" if mx.default_device() == mx.gpu else "cpu"
    rtol = 1e-2 if any(parse_name(t).device != here for _, t in plan.rules) else 1e-4
    # differences relative to each output's scale: entries near zero have no relative error
    worst = max((float(mx.max(mx.abs(a - b))) / (float(mx.max(mx.abs(b))) or 1.0)
                 for a, b in zip(plain, placed) if a.size), default=0.0)
    if worst > rtol:
        return (f"WARNING: the chosen placement's outputs differ from the unplaced run's by "
                f"up to {worst:.1e} of their largest value (more than {rtol:g})")
    return (f"outputs match the unplaced run's ({plural(len(plain), 'array')}; differences "
            f"up to {worst:.1e} of each one's largest value, within {rtol:g})")


def _find_model(model: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    if model is None:
        model = grouping.find_model(args, kwargs)
    if model is None or not callable(getattr(model, "named_modules", None)):
        raise ArgumentTypeError("autoplace places the modules of an mlx.nn model: pass it as an "
                                "argument of the function or as model=")
    return model


def _check_groups(groups: str | Sequence[str], model: Any) -> list[str]:
    if isinstance(groups, str):
        raise ArgumentValueError(f"groups must be 'module' or a list of module paths, got "
                                 f"{groups!r}")
    paths = {p for p, _ in model.named_modules() if p}
    unknown = [g for g in groups if g not in paths]
    if unknown or not groups:
        raise ArgumentValueError(f"groups {unknown or groups!r} are not module paths of the "
                                 f"model; its outermost are {grouping.module_groups(model)}")
    return list(groups)


def _as_rules(placement: Plan | Mapping[str, str]) -> Rules:
    return placement.rules if isinstance(placement, Plan) else normalise(placement)


def _rules_of(assignment: Mapping[str, str], names: Sequence[str]) -> Rules:
    rest = assignment[REST]
    return (("*", rest), *((f"module:{g}", assignment[g]) for g in names
                           if assignment[g] != rest))


def _assignment_of(rules: Rules, names: Sequence[str]) -> dict[str, str]:
    """The groups' targets under rules made of ``*`` and group rules only ({} otherwise:
    rules that place parts of groups have no assignment to compare)."""
    by_selector = dict(rules)
    group_rules = {f"module:{g}" for g in names}
    if "*" not in by_selector or not set(by_selector) <= group_rules | {"*"}:
        return {}
    rest = by_selector["*"]
    return {REST: rest, **{g: by_selector.get(f"module:{g}", rest) for g in names}}


def _key(assignment: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The assignment up to renaming streams of one device (the rest first): ``left on
    cpu, right on cpu:1`` runs as ``left on cpu:1, right on cpu`` does, measured once."""
    names: dict[str, str] = {}
    per_device: Counter[str] = Counter()
    for g in [REST, *sorted(k for k in assignment if k != REST)]:
        t = assignment[g]
        if t not in names:
            device = parse_name(t).device
            names[t] = f"{device}#{per_device[device]}"
            per_device[device] += 1
    return tuple(sorted((g, names[t]) for g, t in assignment.items()))


def _with(c: Candidate, **changes: Any) -> Candidate:
    return replace(c, **changes)

