"""How busy the GPU was: kernel time against the span it was spread over.

Reads the kernel bars of a Recording (``Op.activity == "kernel"``: start and end
measured on the device by CUPTI), never MLX, so it answers the same for a live run
and for a recording loaded from a file. A GPU that idles more than it works while
a program runs is waiting for the host to encode and launch work: the "overhead
bound" case of MLX's unified-memory guide
(https://ml-explore.github.io/mlx/build/html/usage/unified_memory.html), now measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_recording
from ..model.recording import Recording
from ..model.text import TextRepr, fmt_bytes, fmt_time, plural

# synchronisation records in which the host thread blocked until the GPU got somewhere
HOST_WAITS = ("event synchronize", "stream synchronize", "context synchronize")


@dataclass(frozen=True, repr=False)
class GpuActivity(TextRepr):
    """Kernel time, idle time and the largest idle gaps of a recording's GPU lanes."""

    kernels: int
    span: float  # first kernel start to last kernel end (s)
    busy: float  # time at least one kernel ran (overlapping kernels counted once)
    gaps: tuple[tuple[float, float], ...]  # (start, length) of the largest idle gaps
    copies: int
    copy_bytes: int
    copy_time: float
    wall: float | None = None  # the instrumented run's wall time, where recorded
    # unified-memory migrations: bytes the driver moved on page faults, per direction
    migrated: tuple[tuple[str, int, int], ...] = ()  # (direction, records, bytes)
    host_waits: int = 0  # synchronize calls in which the host waited for the GPU
    host_wait_time: float = 0.0
    # the evaluating thread's time per phase (the host lane: "your code", "unimem walk",
    # "mx.eval"), in the order they first ran; empty where the recording has no host lane
    host: tuple[tuple[str, float], ...] = ()

    @property
    def idle(self) -> float:
        return self.span - self.busy

    @property
    def idle_fraction(self) -> float:
        return self.idle / self.span if self.span > 0 else 0.0

    @property
    def host_bound(self) -> bool:
        """The GPU worked less than half of the run: of its wall time where it is known
        (MLX encodes before the first launch, so the kernel span alone flatters the GPU),
        else of the span from the first kernel to the last."""
        window = self.wall if self.wall else self.span
        return self.kernels > 0 and self.busy < 0.5 * window

    def summary(self) -> str:
        """One line for a widget header or a recording's note ("" without kernels)."""
        if not self.kernels:
            return ""
        text = (f"GPU busy {fmt_time(self.busy)} of a {fmt_time(self.span)} kernel span "
                f"(idle {self.idle_fraction:.0%})")
        if self.wall:
            text += f", {self.busy / self.wall:.0%} of the run"
        return text + ("; host-bound" if self.host_bound else "")

    def lines(self) -> list[str]:
        if not self.kernels:
            return ["GPU activity: no kernels were recorded (not a CUPTI-traced GPU run)"]
        head = (f"GPU activity: {plural(self.kernels, 'kernel')}, busy {fmt_time(self.busy)} "
                f"of a {fmt_time(self.span)} span (idle {self.idle_fraction:.0%})")
        lines = [head]
        if self.wall:
            ran = self.busy / self.wall
            lines.append(f"  the run took {fmt_time(self.wall)}: kernels ran {ran:.0%} of it")
        if self.host_bound:
            lines.append("  host-bound: the GPU waited for work more than it worked")
        if self.host:
            lines.append("  the host: " + ", ".join(f"{name} {fmt_time(t)}"
                                                     for name, t in self.host))
        if self.gaps:
            lines.append("  largest gaps: " + ", ".join(fmt_time(g) for _, g in self.gaps))
        if self.copies:
            lines.append(f"  copies and sets: {self.copies}, {fmt_bytes(self.copy_bytes)} in "
                         f"{fmt_time(self.copy_time)}")
        for direction, n, nbytes in self.migrated:
            lines.append(f"  migrated {direction} on page faults: {fmt_bytes(nbytes)} in "
                         f"{plural(n, 'transfer')}")
        if self.host_waits:
            lines.append(f"  the host waited for the GPU {plural(self.host_waits, 'time')}, "
                         f"{fmt_time(self.host_wait_time)} in all")
        return lines


def gpu_activity(rec: Recording, *, largest: int = 3) -> GpuActivity:
    """Busy time (the union of the kernels' measured intervals), idle time and the
    ``largest`` idle gaps between the first kernel's start and the last one's end."""
    check_recording(rec, what="gpu_activity")
    spans = sorted((op.start, op.end) for op in rec.ops if op.activity == "kernel"
                   and op.start is not None and op.end is not None)
    copies = [(op.end - op.start, op.nbytes) for op in rec.ops
              if op.activity in ("memcpy", "memset") and op.start is not None
              and op.end is not None]
    busy, gaps, span = 0.0, [], 0.0
    if spans:
        cur_start, cur_end = spans[0]
        for start, end in spans[1:]:
            if start > cur_end:  # an idle gap: no kernel ran
                busy += cur_end - cur_start
                gaps.append((cur_end, start - cur_end))
                cur_start, cur_end = start, end
            else:
                cur_end = max(cur_end, end)
        busy += cur_end - cur_start
        span = cur_end - spans[0][0]
    top = tuple(sorted(gaps, key=lambda g: -g[1])[:largest])
    moved: dict[str, list[int]] = {}
    waits = []
    host: dict[str, float] = {}
    for op in rec.ops:
        kind = op.calls[0][0] if op.calls else ""
        if op.activity == "host":
            host[kind] = host.get(kind, 0.0) + (op.duration or 0.0)
        elif op.activity == "migration":  # named "migration <direction>" (native_run)
            entry = moved.setdefault(kind.removeprefix("migration "), [0, 0])
            entry[0] += 1
            entry[1] += op.nbytes
        elif op.activity == "sync" and kind in HOST_WAITS:
            waits.append(op.duration or 0.0)
    return GpuActivity(len(spans), span, busy, top, len(copies),
                       sum(n for _, n in copies), sum(t for t, _ in copies), rec.wall,
                       tuple((d, n, b) for d, (n, b) in sorted(moved.items())),
                       len(waits), sum(waits), tuple(host.items()))


@dataclass(frozen=True)
class Transfer:
    """Bytes moved between memories in one way, as the device or driver measured them."""

    activity: str  # "memcpy" (a copy MLX asked for) or "migration" (pages moved on a fault)
    route: str  # e.g. "memcpy device to device, device to managed", "migration device to host"
    count: int
    nbytes: int
    seconds: float


def transfers(rec: Recording) -> list[Transfer]:
    """A recording's measured copies and migrations, summed per route, largest first."""
    check_recording(rec, what="transfers")
    sums: dict[tuple[str, str], list[float]] = {}
    for op in rec.ops:
        if op.activity not in ("memcpy", "migration"):
            continue
        route = op.detail if op.activity == "memcpy" else op.calls[0][0]
        entry = sums.setdefault((op.activity, route), [0, 0, 0.0])
        entry[0] += 1
        entry[1] += op.nbytes
        entry[2] += op.duration or 0.0
    out = [Transfer(a, r, int(n), int(b), t) for (a, r), (n, b, t) in sums.items()]
    return sorted(out, key=lambda t: -t.nbytes)
