"""Plain data: what a run was, independent of how it was observed.

A Recording (lanes, ops, flows, memory samples, plain-run timing), the traced
Graph and its edge kinds, what the memory tools measured (page residency,
registry snapshots), the measurement modes, the rule that derives start times,
the Chrome trace format recordings are saved in, and the text helpers every
report uses. Nothing here imports MLX or the widget libraries, so recordings
load, compare and render on any machine.
"""

from .graph import EDGE_KINDS, ArrayInfo, Edge, EdgeKind, Graph, Node, StreamId
from .memory import Entry, RegistrySnapshot, Residency
from .modes import MODES, Mode, ModeInfo
from .recording import Flow, Lane, MemorySample, Op, Recording, Timing

__all__ = ["EDGE_KINDS", "MODES", "ArrayInfo", "Edge", "EdgeKind", "Entry", "Flow", "Graph",
           "Lane", "MemorySample", "Mode", "ModeInfo", "Node", "Op", "Recording",
           "RegistrySnapshot", "Residency", "StreamId", "Timing"]
