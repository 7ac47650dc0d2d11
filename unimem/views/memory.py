"""MemoryView: allocator counters over time, the registry, a residency strip per array.

One-way data flow: the view reads a Recording's memory samples and a
RegistrySnapshot (plain data: entries and the residency the registry probed), and
sends plain payloads to ``widgets/memory.js``. It never calls MLX or the probe:
given a Registry (any source with ``snapshot()``), it asks it for a fresh snapshot
at each refresh, so the registry owns every MLX call, the probe included, and
decides what is safe to probe. ``refresh()`` is cheap enough for ``um.watch`` to
call live. Counters travel as float64 bytes and page strips as uint8 fractions
per bucket (traitlets.Bytes), so long runs and big arrays stay small on the wire.
"""

from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets

from ..analysis.gpu import transfers
from ..model.memory import (
    ALLOCATED,
    NOT_ON_HOST,
    NOT_PROBED,
    Entry,
    RegistrySnapshot,
    Residency,
    SnapshotSource,
)
from ..model.recording import MemorySample, Recording
from ..model.text import fmt_bytes, fmt_shape, fmt_time
from .assets import esm
from .closing import close_tree, given_parts

COUNTERS = {
    "active": "bytes MLX's allocator has handed to arrays that still exist: counted "
              "when an op is scheduled, released when its last reference drops",
    "cache": "freed buffers MLX keeps for reuse instead of returning them to the "
             "system: held by the process, used by no array",
    "peak": "the highest active value since mx.reset_peak_memory(); the allocator's "
            "view, not the process footprint the OS reports "
            "(https://github.com/ml-explore/mlx/issues/3896)",
}
# Page classes drawn in a strip; each bucket carries the fraction of its pages in each.
CLASSES = ("host", "not on host", "error", "shared", "not probed")
STRIP_BUCKETS = 512
MAX_POINTS = 2000


def columns(samples: list[MemorySample]) -> np.ndarray:
    """(4, n) float64 rows: t, active, cache, peak."""
    if not samples:
        return np.zeros((4, 0))
    return np.array([(s.t, s.active, s.cache, s.peak) for s in samples], dtype=np.float64).T


def downsample(data: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most ``max_points`` columns of ``columns()`` output.

    Each column is one interval: its start time and the *maximum* of each counter
    in it, so a spike is never averaged away.
    """
    n = data.shape[1]
    if n <= max_points:
        return data
    starts = np.linspace(0, n, max_points, endpoint=False).astype(np.int64)
    out = np.maximum.reduceat(data, starts, axis=1)
    out[0] = data[0, starts]
    return out


def page_classes(res: Residency) -> np.ndarray:
    """One class index (into CLASSES) per page."""
    pages = res.pages
    if res.backend == "metal":
        return np.full(len(pages), CLASSES.index("shared"), dtype=np.int64)
    cls = np.full(len(pages), CLASSES.index("error"), dtype=np.int64)
    cls[pages >= 0] = CLASSES.index("host")
    cls[pages == NOT_ON_HOST] = CLASSES.index("not on host")
    cls[pages == NOT_PROBED] = CLASSES.index("not probed")
    return cls


def strip(res: Residency, buckets: int = STRIP_BUCKETS) -> np.ndarray:
    """(k, len(CLASSES)) uint8: per bucket of consecutive pages, the share of each class.

    k = min(pages, buckets); the browser scales buckets to the strip's pixel width.
    """
    cls = page_classes(res)
    n = len(cls)
    if n == 0:
        return np.zeros((0, len(CLASSES)), dtype=np.uint8)
    k, c = min(n, buckets), len(CLASSES)
    bucket = (np.arange(n, dtype=np.int64) * k) // n  # page i falls in bucket i*k//n
    counts = np.bincount(bucket * c + cls, minlength=k * c).reshape(k, c)
    sizes = np.bincount(bucket, minlength=k)[:, None]
    return np.rint(255 * counts / sizes).astype(np.uint8)


class MemoryView(anywidget.AnyWidget):
    """Active, cache and peak memory over time, the registry, and per-array residency.

    ``registry`` is a Registry (``um.track``; any source with ``snapshot()``),
    asked for a fresh snapshot at each refresh, or a RegistrySnapshot taken
    already, shown as it is. ``probe`` is passed to the Registry (default: on,
    except on CUDA, where taking an array's address moves a GPU output into
    managed memory) and controls the residency strips. ``max_rows`` keeps live
    refreshes cheap: only the most recent entries are shown and probed.
    ``backend`` names the platform when neither the snapshot nor the recording
    does (``um.watch`` passes this machine's). ``highlight_op`` highlights the
    arrays that op produced or read (made by one of its input ops); link it from
    Python, where the rows are worked out:
    ``traitlets.dlink((timeline, "hovered"), (view, "highlight_op"))``.
    """

    _esm = esm("memory.js")
    counters = traitlets.Bytes(b"").tag(sync=True)  # float64, 4 rows: t, active, cache, peak
    n_samples = traitlets.Int(0).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    strips = traitlets.Bytes(b"").tag(sync=True)  # uint8 (bucket, class), rows index into it
    classes = traitlets.List(traitlets.Unicode(), list(CLASSES)).tag(sync=True)
    explain = traitlets.Dict(COUNTERS).tag(sync=True)
    backend = traitlets.Unicode("").tag(sync=True)
    highlight_op = traitlets.Int(-1).tag(sync=True)
    highlight_rows = traitlets.List(traitlets.Int()).tag(sync=True)
    # copies and migrations the GPU's driver measured (CUPTI): one row per route
    transfers = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, recording: Recording | None = None,
                 registry: SnapshotSource | RegistrySnapshot | None = None, *,
                 probe: bool | None = None, max_rows: int = 200, backend: str | None = None,
                 **kwargs: Any) -> None:
        if recording is not None and not isinstance(recording, Recording):
            raise TypeError(f"recording must be a unimem Recording, got "
                            f"{type(recording).__name__}")
        if registry is not None and not isinstance(registry, RegistrySnapshot) \
                and not callable(getattr(registry, "snapshot", None)):
            raise TypeError(f"registry must be a unimem Registry (um.track(...)) or a "
                            f"RegistrySnapshot, got {type(registry).__name__}")
        if isinstance(registry, RegistrySnapshot) and probe is not None:
            raise ValueError("probe is for a Registry to apply; this RegistrySnapshot was "
                             "taken already (see Registry.snapshot(probe=...))")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
        super().__init__(**kwargs)
        self._given = given_parts(kwargs)  # a layout passed in may be shared: not closed
        self.recording, self.registry, self.max_rows = recording, registry, max_rows
        self._probe_asked, self._backend_asked = probe, backend
        self._hidden = 0
        self._converted = np.zeros((4, 0))
        self._snapshot: RegistrySnapshot | None = None
        self._entries: list[Entry] = []
        self._residency: dict[str, Residency] = {}
        self.observe(self._on_highlight, names="highlight_op")
        self.refresh()

    def close(self) -> None:
        """Close the widget and its layout, and let go of the recording and registry."""
        if not hasattr(self, "_given"):  # __init__ raised (bad input); ipywidgets still
            super().close()  # closes what it made, from Widget.__del__
            return
        close_tree(self, super().close, self._given)
        self.recording, self.registry = None, None
        self.refresh()  # empty now; the comm is closed, so nothing is sent

    # -- data --------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the recording's samples and, from a Registry, a fresh snapshot."""
        samples = list(self.recording.memory) if self.recording is not None else []
        self._samples = samples
        data = downsample(self._columns(samples))
        snap = self._snapshot = self._read()
        self.backend, self.probe = self._backend_and_probe(snap)
        entries = list(snap.entries) if snap is not None else []
        self._hidden = max(0, len(entries) - self.max_rows)
        self._entries = entries[self._hidden:]
        found = snap.residency if snap is not None else {}
        self._residency = {e.name: found[e.name] for e in self._entries if e.name in found}
        rows, parts, offset = [], [], 0
        for e in self._entries:
            res = self._residency.get(e.name)
            part = strip(res) if res is not None else np.zeros((0, len(CLASSES)), np.uint8)
            parts.append(part)
            rows.append(self._row(e, res, offset, len(part), self.probe))
            offset += len(part)
        moved = transfers(self.recording) if self.recording is not None else []
        with self.hold_sync():
            self.transfers = [{"activity": t.activity, "route": t.route, "count": t.count,
                               "bytes": fmt_bytes(t.nbytes), "time": fmt_time(t.seconds)}
                              for t in moved]
            self.counters = data.tobytes()
            self.n_samples = int(data.shape[1])
            self.rows = rows
            self.strips = np.concatenate(parts).tobytes() if parts else b""
            self.highlight_rows = self._highlighted(self.highlight_op)

    def _read(self) -> RegistrySnapshot | None:
        """The snapshot to show: the one handed in, or a fresh one from the Registry."""
        source = self.registry
        if source is None or isinstance(source, RegistrySnapshot):
            return source
        return source.snapshot(self.recording, probe=self._probe_asked, last=self.max_rows)

    def _backend_and_probe(self, snap: RegistrySnapshot | None) -> tuple[str, bool]:
        """The platform's label and whether residency was probed, from what the view
        was handed: the ``backend`` asked for, the snapshot's, the recording's, else "?"."""
        rec = self.recording
        backend = (self._backend_asked or (snap.backend if snap is not None else "")
                   or (rec.platform.get("backend", "") if rec is not None else "") or "?")
        if snap is not None:
            return backend, snap.probed
        probe = self._probe_asked
        return backend, (backend != "cuda" if probe is None else bool(probe))

    def _columns(self, samples: list[MemorySample]) -> np.ndarray:
        """Samples as columns, converting only those added since the last refresh."""
        done = self._converted.shape[1]
        if len(samples) < done:  # the recording was replaced or cleared
            done, self._converted = 0, np.zeros((4, 0))
        if len(samples) > done:
            self._converted = np.concatenate([self._converted, columns(samples[done:])], axis=1)
        return self._converted

    @staticmethod
    def _row(e: Entry, res: Residency | None, offset: int, buckets: int,
             probe: bool) -> dict[str, Any]:
        return {
            "name": e.name, "shape": fmt_shape(e.shape), "dtype": e.dtype,
            "bytes": fmt_bytes(e.nbytes),
            "buffer": fmt_bytes(e.buffer_bytes) if e.buffer_bytes is not None else "-",
            "stream": e.stream, "state": e.state, "alive": e.alive,
            "producer": -1 if e.producer is None else e.producer,
            "pages": len(res.pages) if res is not None else 0,
            "offset": offset, "buckets": buckets,
            "residency": _residency_text(res, e if probe else None),
        }

    def _on_highlight(self, change: dict[str, Any]) -> None:
        self.highlight_rows = self._highlighted(change["new"])

    def _highlighted(self, op_id: int) -> list[int]:
        """Rows of arrays op ``op_id`` produced, or read (made by one of its input ops)."""
        if op_id < 0:
            return []
        touched = {op_id}
        rec = self.recording
        if rec is not None and op_id < len(rec.ops):
            touched.update(rec.ops[op_id].inputs)
        return [i for i, e in enumerate(self._entries) if e.producer in touched]

    # -- text ------------------------------------------------------------------------
    def lines(self) -> list[str]:
        samples = self._samples
        span = fmt_time(samples[-1].t - samples[0].t) if len(samples) > 1 else fmt_time(0.0)
        alive = sum(e.alive for e in self._entries)
        shown = f"{len(self._entries)} arrays ({alive} alive)"
        if self._hidden:
            shown += f", {self._hidden} older entries not shown (max_rows={self.max_rows})"
        out = [(f"MemoryView ({self.backend}): {len(samples)} memory samples over {span}, "
                f"{shown}")]
        for key, words in COUNTERS.items():
            if samples:
                last, top = getattr(samples[-1], key), max(getattr(s, key) for s in samples)
                figs = f"last {fmt_bytes(last)}, max {fmt_bytes(top)}"
            else:
                figs = "no samples"
            out.append(f"  {key:<6} {figs}: {words}")
        for t in self.transfers:
            out.append(f"  moved: {t['route']}: {t['bytes']} in {t['count']} "
                       f"({t['time']}), measured by CUPTI")
        if self._snapshot is not None:
            rows = self._snapshot.lines()[1:]
            out += ["  " + line for line in rows[:1] + rows[1 + self._hidden:]]
        for name, res in self._residency.items():
            out.append(f"  residency {name}: {_residency_text(res)}")
        if not self.probe:
            out.append("  residency: not probed (on CUDA, probing moves GPU outputs into "
                       "managed memory; pass probe=True to accept that)")
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())


def _residency_text(res: Residency | None, entry: Entry | None = None) -> str:
    """One line for a row; ``entry`` says why a probed view skipped an array."""
    if res is None:
        if entry is None or not entry.alive:
            return "not probed"
        return f"not probed: {entry.state}" + (" (in flight)" if entry.producer is not None
                                               and entry.state == ALLOCATED else "")
    if res.backend == "metal":
        return f"{len(res.pages)} pages, one shared copy (unified memory)"
    if not res.probed:
        return f"not probed: {res.message}"
    return f"{100 * res.on_host:.1f}% of {len(res.pages)} pages on host"
