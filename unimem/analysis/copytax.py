"""The copy tax of a placement: what crossing devices would cost, and what it costs here.

For every cross-stream edge of a traced graph (or flow of a recording) three
figures are kept apart:

* ``nbytes``: the bytes the consumer reads from another stream (data, measured
  from shapes and dtypes);
* ``discrete_bytes``: what a discrete-GPU model with explicit copies would send
  over the bus: the array on a device switch, nothing between two streams of one
  device; its time at ``bandwidth`` is a **model**, never a measurement;
* ``platform_bytes``: what this platform moves. Apple and the CPU build: 0 (one
  copy, streams only synchronise). CUDA: a GPU→CPU edge makes MLX copy the buffer
  into managed memory and its pages migrate when the CPU touches them; a CPU→GPU
  edge migrates managed pages on the GPU's first touch. unimem cannot see those
  migrations by themselves, so CUDA rows say "up to" the array size, labelled as
  a bound, until :meth:`CopyTax.observe` replaces a row with the pages
  ``um.residency`` saw move (before and after the consumer ran).

A recording traced with CUPTI (MLX's CUDA build) also carries what the run did copy,
measured on the device: its memcpy bars, summed into the table's last figure.

Which of those rules applies is the backend the figures are for: the one a
recording names, or the one passed in. A traced graph ran nowhere, so it needs
one passed; ``um.copy_tax`` (``unimem/copytax.py``) supplies this machine's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..checks import check_number
from ..errors import ArgumentTypeError, ArgumentValueError
from ..model.graph import CROSS_STREAM, DEVICE_SWITCH, Graph
from ..model.memory import Residency
from ..model.recording import Recording
from ..model.text import TextRepr, fmt_bytes, fmt_time, plural, text_table

PCIE_BANDWIDTH = 25e9  # bytes/s: PCIe 4.0 x16 as delivered in practice (~25 of 32 GB/s)
PLATFORM_BASIS = {
    "metal": "0 B: one shared copy (Apple unified memory), streams only synchronise",
    "cpu": "0 B: host memory only (CPU build)",
    "cuda": "bound, not measured: up to the array's bytes migrate (managed memory, on "
            "first touch) on a device switch; 0 B between streams of one device",
}


@dataclass(frozen=True)
class EdgeTax:
    """One cross-stream edge: producer → consumer, and the bytes each model moves."""

    src: str  # "Exp#3 (cpu)" for graphs, "op 3 (cpu)" for recordings
    dst: str
    kind: str  # CROSS_STREAM or DEVICE_SWITCH
    nbytes: int
    discrete_bytes: int
    platform_bytes: int  # a rule (0), a bound (CUDA), or pages the probe saw move
    observed: bool = False  # True: platform_bytes counts pages that changed place
    seconds: float | None = None  # measured time of the consumer, when observed

    def bus_seconds(self, bandwidth: float) -> float:
        """Modelled time to send ``discrete_bytes`` over the bus: not measured."""
        return self.discrete_bytes / bandwidth


@dataclass(repr=False)
class CopyTax(TextRepr):
    """Per-edge copy tax of one traced placement or recording."""

    _html_class = "unimem-copytax"

    title: str
    backend: str
    edges: list[EdgeTax]
    bandwidth: float = PCIE_BANDWIDTH
    # what the run copied, measured on the device by CUPTI (a recording's memcpy bars):
    # how many, their bytes and their time; 0 where nothing was traced
    copies: int = 0
    copied_bytes: int = 0
    copy_seconds: float = 0.0
    # unified-memory migrations the driver made on page faults (CUPTI's counters)
    migrations: int = 0
    migrated_bytes: int = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.edges)

    @property
    def discrete_bytes(self) -> int:
        return sum(e.discrete_bytes for e in self.edges)

    @property
    def platform_bytes(self) -> int:
        return sum(e.platform_bytes for e in self.edges)

    @property
    def bus_seconds(self) -> float:
        """Modelled bus time of the discrete-GPU model (not measured)."""
        return self.discrete_bytes / self.bandwidth

    def table(self) -> list[list[str]]:
        rows = [["producer", "consumer", "kind", "bytes", "discrete GPU", "bus time (model)",
                 "this platform"]]
        for e in self.edges:
            here = fmt_bytes(e.platform_bytes)
            if e.observed:
                here += " moved (probed" + (f", {fmt_time(e.seconds)})" if e.seconds else ")")
            elif self.backend == "cuda" and e.platform_bytes:
                here = "≤ " + here
            rows.append([e.src, e.dst, e.kind, fmt_bytes(e.nbytes), fmt_bytes(e.discrete_bytes),
                         fmt_time(e.bus_seconds(self.bandwidth)), here])
        return rows

    def lines(self, max_rows: int = 20) -> list[str]:
        kinds = {k: sum(e.kind == k for e in self.edges) for k in (CROSS_STREAM, DEVICE_SWITCH)}
        head = (f"Copy tax of {self.title} ({self.backend}): "
                f"{plural(len(self.edges), 'cross-stream edge')} ({kinds[DEVICE_SWITCH]} device "
                f"switch, {kinds[CROSS_STREAM]} same device)")
        out = [head]
        out.append(f"  bytes crossing streams: {fmt_bytes(self.nbytes)}")
        out.append(f"  discrete-GPU model: {fmt_bytes(self.discrete_bytes)} over the bus = "
                   f"{fmt_time(self.bus_seconds)} at {self.bandwidth / 1e9:.0f} GB/s "
                   "(model, not measured)")
        out.append(f"  this platform: {PLATFORM_BASIS[self.backend]}")
        if self.copies:
            out.append(f"  measured on the device (CUPTI): {plural(self.copies, 'memcpy')}, "
                       f"{fmt_bytes(self.copied_bytes)} in {fmt_time(self.copy_seconds)}")
        if self.migrations:
            out.append(f"  migrated on page faults (CUPTI's unified-memory counters): "
                       f"{fmt_bytes(self.migrated_bytes)} in "
                       f"{plural(self.migrations, 'transfer')}")
        seen = sum(e.observed for e in self.edges)
        if seen:
            out.append(f"  observed with the page probe: {seen} of "
                       f"{plural(len(self.edges), 'edge')}")
        rows = self.table()
        if len(rows) > 1:
            out += text_table(rows[: max_rows + 1])
            if len(rows) - 1 > max_rows:
                out.append(f"  … {plural(len(rows) - 1 - max_rows, 'more edge')}")
        return out


    def observe(self, edge: int, before: Residency, after: Residency,
                seconds: float | None = None) -> EdgeTax:
        """Replace edge ``edge``'s platform bytes with what the probe saw move.

        ``before``/``after``: ``um.residency`` of the crossing array before and after
        the consumer ran (``seconds``: its measured time, if timed). Pages that
        arrived on the host or left it count; the edge is then marked observed.
        """
        if not 0 <= edge < len(self.edges):
            raise IndexError(f"edge must be in [0, {len(self.edges)}), got {edge}")
        moved = after.moved_pages(before)
        e = replace(self.edges[edge], platform_bytes=moved * after.page_size, observed=True,
                    seconds=seconds)
        self.edges[edge] = e
        return e


def _platform_bytes(kind: str, nbytes: int, backend: str) -> int:
    return nbytes if backend == "cuda" and kind == DEVICE_SWITCH else 0


def _edge(src: str, dst: str, kind: str, nbytes: int, backend: str) -> EdgeTax:
    return EdgeTax(src, dst, kind, nbytes, nbytes if kind == DEVICE_SWITCH else 0,
                   _platform_bytes(kind, nbytes, backend))


def copy_tax(source: Graph | Recording, *, bandwidth: float = PCIE_BANDWIDTH,
             backend: str | None = None) -> CopyTax:
    """Copy-tax table of a traced graph (``um.trace``) or a recording (``um.profile``).

    ``bandwidth`` (bytes/s) sets the discrete-GPU model's bus; ``backend``
    ("metal", "cuda", "cpu") defaults to the platform that made the recording
    (:func:`recorded_backend`) and must be given when the source names none.
    """
    check_number("bandwidth", bandwidth, meaning="bytes/s over the modelled bus")
    if isinstance(source, Graph):
        nodes = source.nodes

        def node(i: int) -> str:
            return f"{nodes[i].name}#{i} ({nodes[i].lane})"

        # a cross-stream edge always has a producer (inputs count as same stream)
        crossings = [(node(e.src), node(e.dst), e.kind, e.nbytes)
                     for e in source.cross_stream_edges if e.src is not None]
    elif isinstance(source, Recording):
        lanes = {lane.id: lane.name for lane in source.lanes}
        ops = source.ops
        crossings = [(f"op {f.src} ({lanes[ops[f.src].lane]})",
                      f"op {f.dst} ({lanes[ops[f.dst].lane]})", f.kind, f.nbytes)
                     for f in source.flows if f.kind in (CROSS_STREAM, DEVICE_SWITCH)]
    else:
        raise ArgumentTypeError("copy_tax needs a Graph (um.trace) or a Recording "
                                f"(um.profile), got {type(source).__name__}")
    backend = backend or recorded_backend(source)
    if not isinstance(backend, str) or backend not in PLATFORM_BASIS:
        why = "" if backend else " (the source names no platform: pass backend=)"
        raise ArgumentValueError(f"backend must be one of {tuple(PLATFORM_BASIS)}, "
                                 f"got {backend!r}{why}")
    edges = [_edge(src, dst, kind, nbytes, backend) for src, dst, kind, nbytes in crossings]
    ops = source.ops if isinstance(source, Recording) else []
    copies = [op for op in ops if op.activity == "memcpy" and op.duration is not None]
    moved = [op for op in ops if op.activity == "migration"]
    return CopyTax(source.title, backend, edges, float(bandwidth), len(copies),
                   sum(op.nbytes for op in copies), sum(op.duration or 0.0 for op in copies),
                   len(moved), sum(op.nbytes for op in moved))


def recorded_backend(source: object) -> str | None:
    """The backend a recording says it was made on; None for a graph (traced, not run),
    a recording that names none, or anything else."""
    if isinstance(source, Recording):
        return source.platform.get("backend") or None
    return None
