"""What the memory tools measured, as plain data: page residency and registry entries.

The probe (``unimem.memory.residency``) and the registry (``unimem.memory.registry``)
call MLX and the OS; what they return lives here, so views and analyses read a
result without being able to take a measurement (and without waiting on an array
or moving its pages), and a result can be held, compared or shown anywhere.

``Residency.pages`` is the probe's NumPy array of page codes. NumPy is imported
only inside the methods that need more than the array's own methods: whoever
holds pages has NumPy loaded already, and ``unimem.model`` loads without it.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .recording import Recording
from .text import TextRepr, fmt_bytes, fmt_shape, fmt_time, plural, prose, text_table

if TYPE_CHECKING:
    import numpy as np

# -- page residency ------------------------------------------------------------------
NOT_ON_HOST = -errno.ENOENT
NOT_PROBED = -1000  # a code of our own: this platform cannot ask the kernel

MEANINGS = {
    "metal": "Apple unified memory: one shared physical copy that the CPU and the GPU "
             "both read; nothing migrates, streams only synchronise",
    "cuda": "CUDA: a host node means the page is in host memory; not on host means on "
            "the GPU (device or managed memory) or not yet host-visible",
    "cpu": "CPU-only build: ordinary host memory; every written page is on a host node",
}
OBSERVER_EFFECT = {
    "metal": "none: the probe reads no data and Metal buffers never move",
    "cuda": "taking the array's address makes MLX move a GPU output from device memory "
            "into managed memory (a copy on the GPU; its pages stay on the GPU); the "
            "probe itself reads no data and moves no page",
    "cpu": "none: the probe reads no data and moves no page",
}


@dataclass(frozen=True)
class Run:
    """Consecutive pages with one code: ``count`` pages from page ``start``."""

    code: int
    start: int
    count: int


@dataclass(repr=False)
class Residency(TextRepr):
    """Per-page location of one array's host mapping, with its platform meaning.

    ``pages`` holds one code per page: ``>= 0`` host NUMA node, ``NOT_ON_HOST``
    (-ENOENT), another negative errno, or ``NOT_PROBED`` where no probe exists.
    """

    _html_class = "unimem-residency"

    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    page_size: int
    pages: np.ndarray
    backend: str
    probed: bool
    seconds: float  # measured: the move_pages calls only
    message: str = ""
    name: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[Run]:
        return runs_of(self.pages)

    @property
    def counts(self) -> dict[int, int]:
        import numpy as np

        codes, counts = np.unique(self.pages, return_counts=True)
        return {int(c): int(k) for c, k in zip(codes, counts)}

    @property
    def on_host(self) -> float:
        """Fraction of pages on a host node (1.0 on Apple: the one copy is shared)."""
        if self.backend == "metal":
            return 1.0
        n = len(self.pages)
        return int((self.pages >= 0).sum()) / n if n else 0.0

    @property
    def meaning(self) -> str:
        return MEANINGS[self.backend]

    @property
    def gb_per_s(self) -> float | None:
        """Mapped bytes probed per second (measured), None when nothing was probed."""
        if not self.probed or self.seconds <= 0:
            return None
        return len(self.pages) * self.page_size / self.seconds / 1e9

    def moved_pages(self, before: Residency) -> int:
        """Pages of the same array that arrived on the host or left it since ``before``."""
        if len(before.pages) != len(self.pages) or before.page_size != self.page_size:
            raise ValueError("moved_pages compares two probes of the same array: "
                             f"{len(before.pages)} pages vs {len(self.pages)}")
        if not (self.probed and before.probed):
            raise ValueError("moved_pages needs two probed results (move_pages is unavailable)")
        return int(((before.pages >= 0) != (self.pages >= 0)).sum())

    def lines(self, max_runs: int = 8) -> list[str]:
        title = self.name + ": " if self.name else ""
        head = (f"Residency of {title}{self.dtype} {fmt_shape(self.shape)}, "
                f"{fmt_bytes(self.nbytes)}: {plural(len(self.pages), 'page')} of "
                f"{fmt_bytes(self.page_size)} ({self.backend})")
        out = [head]
        if not self.probed:
            out.append(f"  not probed: {self.message}")
        else:
            for code, k in sorted(self.counts.items(), key=lambda x: (x[0] < 0, x[0])):
                share = 100 * k / len(self.pages)
                out.append(f"  {code_label(code)}: {plural(k, 'page')} ({share:.1f}%)")
            runs = self.runs
            shown = ", ".join(f"[{r.start}:{r.start + r.count}] {code_label(r.code)}"
                              for r in runs[:max_runs])
            more = f", … {len(runs) - max_runs} more runs" if len(runs) > max_runs else ""
            out.append(f"  runs: {shown or 'none'}{more}")
            out.append(f"  probed in {fmt_time(self.seconds)} with move_pages(2), "
                       "query only: no page moved")
        out.append(f"  meaning: {self.meaning}")
        out.append(f"  observer effect: {OBSERVER_EFFECT[self.backend]}")
        out += [x for n in self.notes for x in prose(f"  note: {n}")]
        return out



def code_label(code: int) -> str:
    if code >= 0:
        return f"host node {code}"
    if code == NOT_ON_HOST:
        return "not on host"
    if code == NOT_PROBED:
        return "not probed"
    name = errno.errorcode.get(-code, str(-code))
    return f"error {name}"


def runs_of(pages: np.ndarray) -> list[Run]:
    """Run-length encoding of a page-code array."""
    if len(pages) == 0:
        return []
    import numpy as np

    cuts = np.flatnonzero(np.diff(pages)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(pages)]))
    return [Run(int(pages[s]), int(s), int(e - s)) for s, e in zip(starts, ends)]


# -- registry entries ----------------------------------------------------------------
LAZY, ALLOCATED, EVALUATED, FREED = "lazy", "allocated", "evaluated", "freed"
STATES = {
    LAZY: "not scheduled yet: no buffer",
    ALLOCATED: "scheduled or evaluated: MLX gave it a buffer (whether its kernel has "
               "finished cannot be read without waiting)",
    EVALUATED: "computed: the recording measured the end of the op that made it",
    FREED: "the last reference is gone and MLX freed or reused its buffer",
}


@dataclass(frozen=True)
class Entry:
    """A snapshot of one registered array (plain data: views read only these)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # logical size: size × itemsize
    buffer_bytes: int | None  # mx.get_array_buffer_size: whole buffer, views de-duplicated
    stream: str  # lane that produced it, "?" when not known
    state: str  # a key of STATES
    alive: bool
    producer: int | None  # recording op id


@dataclass(frozen=True, repr=False)
class RegistrySnapshot(TextRepr):
    """A registry read at one moment: every entry and the residency of those probed.

    ``residency`` is keyed by entry name and holds only the arrays the registry
    chose to probe; ``probed`` says whether probing was asked for at all, and
    ``backend`` is the platform the snapshot was taken on.
    """

    _html_class = "unimem-registry"

    entries: tuple[Entry, ...]
    residency: Mapping[str, Residency]
    probed: bool
    backend: str
    dropped: int = 0  # entries the registry let go of past its limit
    limit: int = 0

    def table(self) -> list[list[str]]:
        """Header plus one row of text per entry (no addresses, no times)."""
        rows = [["name", "shape", "dtype", "bytes", "buffer", "stream", "state", "op"]]
        for e in self.entries:
            rows.append([
                e.name, fmt_shape(e.shape), e.dtype, fmt_bytes(e.nbytes),
                fmt_bytes(e.buffer_bytes) if e.buffer_bytes is not None else "-",
                e.stream, e.state, "-" if e.producer is None else str(e.producer),
            ])
        return rows

    def lines(self) -> list[str]:
        alive = sum(e.alive for e in self.entries)
        head = f"Registry: {plural(len(self.entries), 'array')} ({alive} alive)"
        if self.dropped:
            head += f", {self.dropped} older entries dropped (limit {self.limit})"
        return [head, *text_table(self.table())]



class SnapshotSource(Protocol):
    """Anything that can read its arrays into a RegistrySnapshot (``um.Registry`` does).

    ``recording`` lends op lanes and measured ends to entries that carry only an
    op id; ``probe`` None leaves the choice to the source; ``last`` limits probing
    to the most recent entries.
    """

    def snapshot(self, recording: Recording | None = None, *, probe: bool | None = None,
                 last: int | None = None) -> RegistrySnapshot: ...
