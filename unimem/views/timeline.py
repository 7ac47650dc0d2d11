"""The timeline widget: one or more recordings as lanes of bars, flows and memory.

A view only: it reads Recordings and never calls MLX. Python packs the data
(``timeline_payload.pack``) and ``widgets/timeline.js`` draws it on a canvas. Several recordings
are stacked on one shared time scale (each from its own origin), so placements
compare by eye.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import anywidget
import traitlets as t

from ..checks import check_window
from ..model.recording import Recording
from ..model.text import plural
from .assets import esm
from .closing import close_tree, given_parts
from .timeline_payload import Meta, PackCache, Packed, pack


def _starts(measured: int, ops: int) -> str:
    """How ``ops`` bars' starts were timed, ``measured`` of them measured (timeline.js
    says the same in a recording's title)."""
    if measured == ops:
        return "measured starts"
    return "derived starts" if measured == 0 else "derived and measured starts"


def _op_ids(op_ids: Any) -> list[int]:
    """Op ids from a list of ints or an object carrying them (e.g. a critical path)."""
    for attr in ("op_ids", "ops"):
        if hasattr(op_ids, attr) and not isinstance(op_ids, (list, tuple)):
            op_ids = getattr(op_ids, attr)
            break
    if not isinstance(op_ids, Iterable) or isinstance(op_ids, (str, bytes)):
        raise TypeError(f"highlight expects op ids (ints), got {type(op_ids).__name__}")
    out: list[int] = []
    for x in op_ids:
        op_id = getattr(x, "id", x)
        if not isinstance(op_id, int) or isinstance(op_id, bool):
            raise TypeError(f"highlight expects op ids (ints), got {op_id!r}")
        out.append(op_id)
    return out


# Ops sent to the browser per recording, by default: about 50 bytes a bar and a flow, so a
# recording's widget state stays near 250 KiB (what a notebook saved with widget state
# keeps); the header says how many older ops are not shown.
WINDOW = 5_000


class Timeline(anywidget.AnyWidget):
    """Lanes per stream, a bar per op, arrows for cross-stream waits, a memory lane.

    ``window`` bounds the ops sent to the browser per recording (the most recent
    ones, :data:`WINDOW` by default); older ops stay in the recording, and the header
    says how many are not shown. Bar ends are measured, starts derived
    unless the recording measured them; the view says which.
    """

    _esm = esm("timeline.js", "timeline_draw.js", "timeline_labels.js")
    _meta = t.Dict().tag(sync=True)
    _payload = t.Bytes(b"").tag(sync=True)
    _highlight = t.List(t.Int()).tag(sync=True)  # bar indices, in chain order
    hovered = t.Int(-1).tag(sync=True)  # op id under the mouse in recording 0; -1: none

    def __init__(self, *recordings: Recording, window: int = WINDOW,
                 labels: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._given = given_parts(kwargs)  # a layout passed in may be shared: not closed
        self.window = check_window(window)
        self._highlight_ids: dict[int, list[int]] = {}
        self._packed: Packed  # set by show(), below
        self.recordings: list[Recording] = []
        self.labels: list[str] = []
        self.show(*recordings, labels=labels)

    def show(self, *recordings: Recording, labels: Sequence[str] | None = None) -> None:
        """Replace what is drawn (e.g. explore's latest run) and clear any highlight."""
        if not recordings:
            raise ValueError("Timeline needs at least one Recording (from um.profile, "
                             "um.compare(...)[label], um.watch().recording or Recording.load)")
        bad = [r for r in recordings if not isinstance(r, Recording)]
        if bad:
            raise TypeError(f"Timeline draws Recordings, got {type(bad[0]).__name__}")
        if labels is None:
            labels = [r.title for r in recordings]
        labels = [str(x) for x in labels]
        if len(labels) != len(recordings):
            raise ValueError(f"{len(labels)} labels for {len(recordings)} recordings: "
                             "give one label per recording")
        self.recordings, self.labels = list(recordings), labels
        self._highlight_ids = {}
        self._cache = PackCache()  # rows of settled ops, reused by refresh()
        self.refresh()

    def close(self) -> None:
        """Close the widget and its layout, and let go of the recordings it draws."""
        close_tree(self, super().close, self._given)
        self.recordings, self.labels, self._highlight_ids = [], [], {}
        self._cache, self._packed = PackCache(), Packed(cast(Meta, {}), b"")
        with self.hold_sync():  # the comm is closed: nothing is sent
            self._meta, self._payload, self._highlight = {}, b"", []

    def refresh(self) -> None:
        """Re-pack and re-send the recordings (cheap: proportional to ``window``)."""
        if not self.recordings:  # closed
            return
        self._packed = pack(self.recordings, self.labels, self.window, self._cache)
        with self.hold_sync():
            self._meta = dict(self._packed.meta)
            self._payload = self._packed.payload
            self._highlight = self._highlight_bars()

    def highlight(self, op_ids: Any, recording: int = 0) -> None:
        """Draw a chain of ops (e.g. a critical path) highlighted; ``[]`` clears it."""
        if not 0 <= recording < len(self.recordings):
            raise ValueError(f"recording must be in 0..{len(self.recordings) - 1}, "
                             f"got {recording}")
        ids = _op_ids(op_ids)
        known = {op.id for op in self.recordings[recording].ops}
        missing = [i for i in ids if i not in known]
        if missing:
            raise ValueError(f"recording {recording} has no op {missing[0]}: "
                             f"op ids are 0..{len(known) - 1}")
        self._highlight_ids = {recording: ids} if ids else {}
        self._highlight = self._highlight_bars()

    def _highlight_bars(self) -> list[int]:
        return [b for r, ids in self._highlight_ids.items()
                for b in self._packed.bar_of(r, ids)]

    # -- text -------------------------------------------------------------
    def __repr__(self) -> str:
        if not self.recordings:
            return "Timeline: closed"
        meta = self._packed.meta
        recs = meta["recordings"]
        head = "Timeline"
        if len(recs) > 1:
            head += f" of {len(recs)} recordings ({' | '.join(self.labels)})"
        parts = [(f"{plural(len(meta['lanes']), 'lane')}, {plural(meta['n_ops'], 'bar')}, "
                  f"{plural(meta['n_flows'], 'cross-stream flow')}")]
        starts = sorted({_starts(r["measured_starts"], r["ops"][1]) for r in recs if r["ops"][1]})
        if starts:
            parts.append("measured ends, " + " / ".join(starts))
        shown, total = meta["n_ops"], sum(r["ops_total"] for r in recs)
        if shown < total:
            parts.append(f"showing last {shown} of {plural(total, 'op')}")
        in_flight = sum(r["in_flight"] for r in recs)
        if in_flight:
            parts.append(f"{in_flight} in flight")
        if meta["n_memory"]:
            parts.append("memory lane (active, cache, peak)")
        if self._highlight:
            parts.append(f"{plural(len(self._highlight), 'op')} highlighted")
        return f"{head}: " + "; ".join(parts)
