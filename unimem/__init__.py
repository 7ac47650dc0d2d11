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
    reg = um.track(x=x)                            # weakly held arrays, size, state
    um.residency(x)                                # where each page of x lives now
    um.copy_tax(g)                                 # bytes crossing devices, per edge
    um.MemoryView(p, reg)                          # counters, registry, page strips
"""

from ._analysis import critical_path, diff, waits
from ._call import NoArraysError
from ._capture import trace
from ._compare import Comparison, compare
from ._copytax import CopyTax, copy_tax
from ._explore import Explore, explore
from ._graph import Graph
from ._measure import profile
from ._memory_view import MemoryView
from ._platform import about, platform
from ._recording import Recording
from ._registry import Registry, track
from ._residency import Residency, residency
from ._streams import GPUUnavailableError, Placement
from ._timeline import Timeline
from ._watch import Watch, watch
from ._zerocopy import ZeroCopyReport, shares_memory, zero_copy_report

__all__ = [
    "Comparison",
    "CopyTax",
    "Explore",
    "GPUUnavailableError",
    "Graph",
    "MemoryView",
    "NoArraysError",
    "Placement",
    "Recording",
    "Registry",
    "Residency",
    "Timeline",
    "Watch",
    "ZeroCopyReport",
    "about",
    "compare",
    "copy_tax",
    "critical_path",
    "diff",
    "explore",
    "platform",
    "profile",
    "residency",
    "shares_memory",
    "trace",
    "track",
    "waits",
    "watch",
    "zero_copy_report",
]
__version__ = "0.1.0"
