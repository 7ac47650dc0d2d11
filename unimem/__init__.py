"""unimem: see where MLX runs your ops and where your arrays live.

    import unimem as um
    um.about()                                     # devices and memory model here
    g = um.trace(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # the graph, nothing run
    p = um.profile(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # timed, with a timeline
    p.to_chrome_trace("fun.json")                  # open in Perfetto
    um.compare(fun, a, b, placements={...})        # placements side by side
    um.explore(fun, a, b, d1=mx.gpu, d2=mx.cpu)    # the interactive widget
    with um.watch() as w: train()                  # any MLX code, live
    um.critical_path(p); um.waits(p); um.diff(p, q)  # why one run is slower
"""

from ._analysis import critical_path, diff, waits
from ._call import NoArraysError
from ._capture import trace
from ._compare import Comparison, compare
from ._graph import Graph
from ._measure import profile
from ._platform import about, platform
from ._recording import Recording
from ._streams import GPUUnavailableError, Placement
from ._watch import Watch, watch

__all__ = [
    "Comparison",
    "GPUUnavailableError",
    "Graph",
    "NoArraysError",
    "Placement",
    "Recording",
    "Watch",
    "about",
    "compare",
    "critical_path",
    "diff",
    "platform",
    "profile",
    "trace",
    "waits",
    "watch",
]
__version__ = "0.1.0"
