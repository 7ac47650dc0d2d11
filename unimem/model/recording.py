"""The Recording: one plain, widget-free object that every view reads.

Capture and measurement write it; the timeline and memory widgets, the Chrome
trace and the text summary only read it. It can be saved, loaded, compared and
rendered without MLX. What was measured and what was derived is data: each op
says whether its start and end were observed, and the recording names its method.

Times are seconds since the recording's origin (``perf_counter`` at its start).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .graph import UNTRACKED, EdgeKind, Graph, StreamId, classify
from .ranks import RankInfo
from .text import TextRepr, fmt_placement, fmt_time, plural, prose

UNTRACKED_LANE = UNTRACKED  # the lane of work whose stream unimem cannot see


# Bars that are not MLX primitives or calls: CUPTI's records (a kernel, a memcpy or memset,
# a unified-memory migration, a host call that synchronised with the GPU) and what the
# evaluating thread was doing (``host``: its own Python, unimem's walk, MLX's eval).
ACTIVITIES = ("", "kernel", "memcpy", "memset", "migration", "sync", "host")


@dataclass(frozen=True)
class Lane:
    """One stream: a row of the timeline."""

    id: int
    name: str  # "gpu", "cpu:1", or UNTRACKED_LANE
    device: str  # "cpu", "gpu", or "?" for work whose stream unimem cannot see
    stream_index: int  # MLX's global stream index (-1 when unknown)

    @property
    def label(self) -> str:
        if self.stream_index < 0:
            return self.name
        return f"{self.name} · Stream({self.device}, {self.stream_index})"


Calls = tuple[tuple[str, int], ...]  # (kind, count) per MLX call kind, in order of first call


@dataclass(slots=True)
class Op:
    """One bar: an MLX call (or a run of calls) handed to a stream and observed.

    ``calls`` says which MLX calls the bar covers, as data: ``(("exp", 50),)`` or
    ``(("ones", 1), ("exp", 1))``; a bare string stands for one call of that kind
    (``Op(0, 0, "exp", t)``). ``name`` and ``count`` are derived from it.
    ``end`` is measured: when a waiter saw the outputs complete (an upper bound,
    late by the waiter's wake-up). ``start`` is derived unless ``start_measured``:
    the latest of the hand-off, the previous op's end on the lane and the end of
    every producer it waited for (model/timing.py). ``end is None`` means still running.
    """

    id: int
    lane: int
    calls: Calls
    submit: float
    start: float | None = None
    end: float | None = None
    dispatched: float | None = None  # when async_eval returned on the host
    inputs: tuple[int, ...] = ()  # ids of producing ops
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    nbytes: int = 0
    start_measured: bool = False
    detail: str = ""
    # A primitive that launched several kernels has a bar per kernel: the first counts
    # the call (("Matmul", 1),), the others count none (("Matmul", 0),), so that
    # Recording.count() counts primitives and calls, never kernels.
    # What the device or driver recorded, where the bar is one (see ACTIVITIES); "" for
    # an MLX primitive, call or segment
    activity: str = ""
    # the traced graph's node this op measured (its index in the recording's graph),
    # where the method knows it (native capture); None for calls and segments
    node: int | None = None

    def __post_init__(self) -> None:
        calls: object = self.calls
        if isinstance(calls, str):  # one call of one kind, the common case when built by hand
            self.calls = ((calls, 1),)

    @property
    def name(self) -> str:
        """The bar's label: "exp" for one call, "exp ×50", "ones ×1 + exp ×1" for a run.

        Untracked work always shows its count ("untracked ×1"): it counts arrays made
        unseen, not one call."""
        (kind, k), *more = self.calls
        if k <= 1 and not more and kind != UNTRACKED_LANE:
            return kind
        return " + ".join(f"{kind} ×{k}" for kind, k in self.calls)

    @property
    def count(self) -> int:
        """MLX calls covered by this bar."""
        return sum(k for _, k in self.calls)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclass(frozen=True)
class Flow:
    """A cross-stream dependency: ``dst`` waited for ``src`` (a fence in MLX)."""

    src: int
    dst: int
    kind: EdgeKind  # one of graph.FLOW_KINDS: see flow_kind
    nbytes: int


def flow_kind(src: Lane, dst: Lane) -> EdgeKind:
    """The kind of a dependency between two different lanes: a fence between streams,
    or UNTRACKED when either side's stream is unknown."""
    if UNTRACKED_LANE in (src.name, dst.name):
        return UNTRACKED
    return classify(StreamId(src.device, src.stream_index),
                    StreamId(dst.device, dst.stream_index))


@dataclass(frozen=True)
class MemorySample:
    """MLX's allocator counters: global, not per stream or device (research §4)."""

    t: float
    active: int
    cache: int
    peak: int


@dataclass(frozen=True)
class Timing:
    """Wall times of plain runs (call + ``mx.eval``), after warm-up."""

    samples: tuple[float, ...]
    warmup: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q1(self) -> float:
        return _quantiles(self.samples)[0]

    @property
    def q3(self) -> float:
        return _quantiles(self.samples)[2]

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def min(self) -> float:
        return min(self.samples)

    def describe(self) -> str:
        return (
            f"median {fmt_time(self.median)} (IQR {fmt_time(self.iqr)}, "
            f"min {fmt_time(self.min)}, {len(self.samples)} runs)"
        )


def _quantiles(xs: tuple[float, ...]) -> list[float]:
    if len(xs) == 1:
        return [xs[0]] * 3
    return statistics.quantiles(xs, n=4, method="inclusive")


@dataclass(repr=False)
class Recording(TextRepr):
    """A measured (or loaded) run: lanes, ops, flows, memory, and how it was made."""

    _html_class = "unimem-recording"

    title: str
    placement: dict[str, str]
    mode: str  # a key of model.modes.MODES: "native", "segment", "op", "exclusive", "watch"
    method: str  # how times were obtained, in words
    lanes: list[Lane] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    timing: Timing | None = None  # plain runs, when the recording came from profile()
    wall: float | None = None  # wall time of the instrumented run
    graph: Graph | None = None
    platform: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rank: RankInfo | None = None  # the rank of an mx.distributed job that recorded this

    # -- derived figures -----------------------------------------------------
    @property
    def makespan(self) -> float | None:
        """From the first hand-off to the last observed completion."""
        ends = [op.end for op in self.ops if op.end is not None]
        if not ends:
            return None
        return max(ends) - min(op.submit for op in self.ops)

    @property
    def overhead(self) -> float | None:
        """Instrumented wall time over the plain median: the cost of looking."""
        if self.timing is None or self.wall is None:
            return None
        return self.wall / self.timing.median

    @property
    def makespan_gap(self) -> float | None:
        """Makespan over the plain median: 1.0 means the timeline spans a plain run."""
        if self.timing is None or self.makespan is None:
            return None
        return self.makespan / self.timing.median

    def provenance(self) -> str:
        """Which op times were measured and which derived, counted from the ops."""
        ends = sum(op.end is not None for op in self.ops)
        measured = sum(op.start_measured for op in self.ops)
        derived = sum(op.start is not None and not op.start_measured for op in self.ops)
        parts = [f"ends measured for {ends} of {plural(len(self.ops), 'op')}"]
        if measured:
            parts.append(f"starts measured for {measured}")
        if derived:
            parts.append(f"starts derived for {derived}")
        if ends < len(self.ops):
            parts.append(f"{len(self.ops) - ends} without an end (in flight or never run)")
        return ", ".join(parts)

    def add_op(self, op: Op) -> None:
        """Append ``op`` (its id must be its position) and a flow per input from another lane."""
        if op.id != len(self.ops):
            raise ValueError(f"op {op.id} added at position {len(self.ops)}")
        lane = self.lanes[op.lane]
        for src in op.inputs:
            src_lane = self.lanes[self.ops[src].lane]
            if src_lane.id != lane.id:
                self.flows.append(Flow(src, op.id, flow_kind(src_lane, lane),
                                       self.ops[src].nbytes))
        self.ops.append(op)

    def lane(self, name: str) -> Lane:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(f"no lane {name!r}; lanes: {[x.name for x in self.lanes]}")

    def ops_on(self, name: str) -> list[Op]:
        lane_id = self.lane(name).id
        return [op for op in self.ops if op.lane == lane_id]

    def calls_by_lane(self) -> dict[str, Counter[str]]:
        """MLX calls per lane and kind (segments counted by the calls they cover)."""
        names = {lane.id: lane.name for lane in self.lanes}
        out: dict[str, Counter[str]] = {lane.name: Counter() for lane in self.lanes}
        for op in self.ops:
            for kind, k in op.calls:
                out[names[op.lane]][kind] += k
        return out

    def count(self, name: str | None = None, lane: str | None = None) -> int:
        """How many MLX calls match a name and/or lane, e.g. ``count("exp", "cpu:1")``.

        The name matches whatever the case: the native method names MLX's
        primitives (``Exp``, ``Matmul``), the hand-off methods the Python calls
        (``exp``, ``matmul``), and a comparison can hold both (a GPU placement
        falls back to ``segment``), so a lesson can count either the same way.
        """
        want = None if name is None else name.lower()
        return sum(
            k
            for lane_name, counts in self.calls_by_lane().items()
            if lane is None or lane_name == lane
            for kind, k in counts.items()
            if want is None or kind.lower() == want
        )

    # -- views ---------------------------------------------------------------
    def lines(self) -> list[str]:
        placement = fmt_placement(self.placement)
        head = f"Recording of {self.title}" + (f" ({placement})" if placement else "")
        lines = [head, *prose(f"  method: {self.method}")]
        for lane, counts in self.calls_by_lane().items():
            label = next(x.label for x in self.lanes if x.name == lane)
            calls = ", ".join(f"{n} ×{k}" if k else n for n, k in counts.most_common(4))
            more = len(counts) - 4
            lines.append(f"  {label}: {calls}" + (f", {more} more {'kind' if more == 1 else 'kinds'}" if more > 0 else ""))
        kinds = Counter(f.kind for f in self.flows)
        waits = ", ".join(f"{k} {kind}" for kind, k in sorted(kinds.items())) or "none"
        lines.append(f"  cross-stream dependencies: {waits}")
        lines.append(f"  times: {self.provenance()}")
        if self.timing is not None:
            lines.append(f"  plain runs: {self.timing.describe()}")
        lines += [f"  {line}" for line in self.fidelity_lines()]
        lines += [x for n in self.notes for x in prose(f"  note: {n}")]
        return lines

    def fidelity_lines(self) -> list[str]:
        """How far the recorded run is from a plain one: the recording's repr and the
        timeline widget's header both show these lines, so they never disagree."""
        lines = []
        if self.wall is not None and self.overhead is not None:
            lines.append(f"instrumented run: {fmt_time(self.wall)} = "
                         f"{self.overhead:.2f}× the plain median")
        if self.makespan is not None:
            gap = f" = {self.makespan_gap:.2f}× the plain median" if self.makespan_gap else ""
            lines.append(f"timeline makespan: {fmt_time(self.makespan)}{gap}")
        return lines

    def to_chrome_trace(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Chrome Trace Event JSON (opens in Perfetto); written to ``path`` if given."""
        from .chrome import to_chrome_trace

        return to_chrome_trace(self, path)

    @classmethod
    def load(cls, path_or_trace: str | os.PathLike[str] | dict[str, Any] | list[Any]
             ) -> Recording:
        """A recording from a Chrome trace: a path (str or ``pathlib.Path``) or a parsed trace.

        A trace written by :meth:`to_chrome_trace` loads back as it was saved; any other
        Chrome trace loads as one lane per thread of complete slices. A trace that breaks
        the Trace Event Format raises :class:`~unimem.errors.TraceFormatError` (a
        ValueError) naming the event, the field, the value given and what is accepted.
        """
        from .chrome_load import from_chrome_trace

        return from_chrome_trace(path_or_trace)
