"""Plain data: what a run was, independent of how it was observed.

A Recording (lanes, ops, flows, memory samples, plain-run timing), the traced
Graph, the Chrome trace format they are saved in, and the text helpers every
report uses. Nothing here imports MLX or the widget libraries, so recordings
load, compare and render on any machine.
"""

from .graph import ArrayInfo, Edge, Graph, Node, StreamId
from .recording import Flow, Lane, MemorySample, Op, Recording, Timing

__all__ = ["ArrayInfo", "Edge", "Flow", "Graph", "Lane", "MemorySample", "Node", "Op",
           "Recording", "StreamId", "Timing"]
