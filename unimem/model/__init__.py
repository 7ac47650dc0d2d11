"""Plain data: what a run was, independent of how it was observed.

A Recording (lanes, ops, flows, memory samples, plain-run timing), the traced
Graph, what the memory tools measured (page residency, registry snapshots), the
Chrome trace format recordings are saved in, and the text helpers every report
uses. Nothing here imports MLX or the widget libraries, so recordings load,
compare and render on any machine.
"""

from .graph import ArrayInfo, Edge, Graph, Node, StreamId
from .memory import Entry, RegistrySnapshot, Residency
from .recording import Flow, Lane, MemorySample, Op, Recording, Timing

__all__ = ["ArrayInfo", "Edge", "Entry", "Flow", "Graph", "Lane", "MemorySample", "Node", "Op",
           "Recording", "RegistrySnapshot", "Residency", "StreamId", "Timing"]
