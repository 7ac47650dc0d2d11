"""unimem: see where MLX runs your ops and where your arrays live.

    import unimem as um
    um.about()                                     # devices and memory model here
    g = um.trace(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # the graph, nothing run
    p = um.profile(fun, a, b, d1=mx.gpu, d2=mx.cpu)  # timed, with a timeline
    p.to_chrome_trace("fun.json")                  # open in Perfetto
    um.compare(fun, a, b, placements={...})        # placements side by side
    um.explore(fun, a, b, d1=mx.gpu, d2=mx.cpu)    # the interactive widget
    plan = um.place(model, {"*": "gpu", "module:layers.0": "cpu"})  # any code
    with plan: step(model, x)                      # its ops land where the rules say
    with um.watch() as w: train()                  # any MLX code, live
    um.launch("job.py", n=2)                       # every rank of a distributed job
    um.critical_path(p); um.waits(p); um.diff(p, q)  # why one run is slower
    reg = um.track(x=x)                            # weakly held arrays, size, state
    um.residency(x)                                # where each page of x lives now
    um.copy_tax(g)                                 # bytes crossing devices, per edge
    um.MemoryView(p, reg)                          # counters, registry, page strips
"""

from .analysis.copytax import CopyTax
from .analysis.diff import Diff, DiffRow, diff
from .analysis.gpu import GpuActivity, Transfer, gpu_activity, transfers
from .analysis.merge import Merge, merge
from .analysis.paths import CriticalPath, Waits, critical_path, waits
from .autoplace import autoplace
from .capture.streams import Placement
from .comparison import Comparison, compare
from .copytax import copy_tax
from .devices import about, gpu_method, platform
from .distributed import DistributedJobError, RankWatch, launch, watch_rank
from .errors import (
    ArgumentTypeError,
    ArgumentValueError,
    ExportFormatError,
    GPUUnavailableError,
    NoArraysError,
    TraceFormatError,
    UnimemError,
    WrongThreadError,
)
from .explorer import Explore, explore
from .memory.registry import Registry, track
from .memory.residency import residency
from .memory.zerocopy import ZeroCopyReport, shares_memory, zero_copy_report
from .model import (
    Edge,
    Flow,
    Graph,
    Lane,
    MemorySample,
    Node,
    Op,
    Recording,
    RegistrySnapshot,
    Residency,
    StreamId,
    Timing,
)
from .model.placement import Ledger
from .placing.plan import Plan, place, region
from .profiler import profile, trace
from .views.charts import Chart, comparison_chart, group_cost_chart, ledger_chart, timings_chart
from .views.memory import MemoryView
from .views.timeline import Timeline
from .watcher import Watch, watch

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "Chart",
    "Comparison",
    "CopyTax",
    "CriticalPath",
    "Diff",
    "DiffRow",
    "DistributedJobError",
    "Edge",
    "Explore",
    "ExportFormatError",
    "Flow",
    "GPUUnavailableError",
    "GpuActivity",
    "Graph",
    "Lane",
    "Ledger",
    "MemorySample",
    "MemoryView",
    "Merge",
    "NoArraysError",
    "Node",
    "Op",
    "Placement",
    "Plan",
    "RankWatch",
    "Recording",
    "Registry",
    "RegistrySnapshot",
    "Residency",
    "StreamId",
    "Timeline",
    "Timing",
    "TraceFormatError",
    "Transfer",
    "UnimemError",
    "Waits",
    "Watch",
    "WrongThreadError",
    "ZeroCopyReport",
    "about",
    "autoplace",
    "compare",
    "comparison_chart",
    "copy_tax",
    "critical_path",
    "diff",
    "explore",
    "gpu_activity",
    "gpu_method",
    "group_cost_chart",
    "launch",
    "ledger_chart",
    "merge",
    "place",
    "platform",
    "profile",
    "region",
    "residency",
    "shares_memory",
    "timings_chart",
    "trace",
    "track",
    "transfers",
    "waits",
    "watch",
    "watch_rank",
    "zero_copy_report",
]
__version__ = "0.1.0"
