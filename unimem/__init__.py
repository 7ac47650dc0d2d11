"""unimem: see where MLX runs your ops and where your arrays live.

    import unimem as um
    um.about()                                     # devices and memory model here
    g = um.trace(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # the graph, nothing run
    p = um.profile(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # timed, with a timeline
    p.to_chrome_trace("fun.json")                  # open in Perfetto
    um.compare(fun, a, b, placements={...})        # placements side by side
    um.explore(fun, a, b, d1=mx.gpu, d2=mx.cpu)    # the interactive widget
"""

from ._call import NoArraysError
from ._capture import trace
from ._compare import Comparison, compare
from ._explore import Explore, explore
from ._graph import Graph
from ._measure import profile
from ._platform import about, platform
from ._recording import Recording
from ._streams import GPUUnavailableError, Placement
from ._timeline import Timeline

__all__ = [
    "Comparison",
    "Explore",
    "GPUUnavailableError",
    "Graph",
    "NoArraysError",
    "Placement",
    "Recording",
    "Timeline",
    "about",
    "compare",
    "explore",
    "platform",
    "profile",
    "trace",
]
__version__ = "0.1.0"
