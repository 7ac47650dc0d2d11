"""The measurement modes: one table that the profiler, the recorder, the watcher and
docs/measurement.md all read, so what a mode is said to do cannot drift apart.

A Recording names its mode and carries the method text and distortion sentence
from here (``Recording.method``, and a ``distortion:`` note from ``um.profile``);
the docs quote every distortion sentence verbatim (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Mode = Literal["native", "op", "segment", "exclusive"]


@dataclass(frozen=True)
class ModeInfo:
    """What a mode hands to MLX, what it measures, and what looking changes."""

    method: str  # um.profile's Recording.method; {size} is the segment size
    distortion: str  # what it changes in the run measured, one sentence
    live_method: str | None  # um.watch's Recording.method ({size}, {budget}); None: not live

    @property
    def live(self) -> bool:
        """Whether ``um.watch`` can record in this mode."""
        return self.live_method is not None


_LIVE = ("measured live: one async_eval per {unit}, a waiter per stream stamps each end "
         "(None while in flight); starts derived from stream order and dependencies")

MODES: Final[dict[Mode, ModeInfo]] = {
    "native": ModeInfo(
        method="measured natively: every CPU primitive wrapped before one plain mx.eval per "
               "eval of the program, its start and end stamped on its stream's worker thread; "
               "on MLX's CUDA build with cupti-python, every GPU kernel, copy and set measured "
               "on the device by CUPTI and attributed to the primitive that launched it",
        distortion="two stamps per primitive on its stream's worker (about a microsecond "
                   "each); Copy and StopGradient stay unwrapped and untimed; with CUPTI, a "
                   "record per kernel, copy, migration and synchronisation call and a "
                   "callback per CUDA graph node",
        live_method="measured natively, live: every CPU primitive wrapped at each eval of "
                    "the program, start and end stamped on its stream's worker thread "
                    "(None while in flight); with CUPTI, GPU kernels measured on the device, "
                    "drawn at each refresh after CUPTI hands them over",
    ),
    "op": ModeInfo(
        method="measured: one async_eval per MLX call, a waiter per stream stamps each end; "
               "starts derived from stream order and dependencies",
        distortion="each call is its own hand-off to MLX (on a GPU, its own command buffer) "
                   "and cannot donate its input buffer",
        live_method=_LIVE.format(unit="MLX call"),
    ),
    "segment": ModeInfo(
        method="measured: one async_eval per segment (up to {size} calls on one stream, cut "
               "where another stream reads it), a waiter per stream stamps each segment's end; "
               "starts derived from stream order and dependencies",
        distortion="each segment is one hand-off to MLX (on a GPU, a command buffer ends "
                   "there); bars cover whole segments",
        live_method=_LIVE.format(unit="segment (up to {size} calls on one stream; cut where "
                                      "another stream reads it, after {budget}, and at every "
                                      "eval)"),
    ),
    "exclusive": ModeInfo(
        method="measured: mx.eval after every MLX call (serialised, streams never overlap); "
               "start and end both measured",
        distortion="no overlap between streams; each op pays a full synchronisation",
        live_method=None,
    ),
}
LIVE_MODES: Final[tuple[Mode, ...]] = tuple(m for m, info in MODES.items() if info.live)
