"""um.copy_tax: the copy tax of a graph or recording, for this machine unless told otherwise.

The arithmetic (``unimem.analysis.copytax``) reads plain data only, so it cannot
ask MLX which platform it runs on. A recording names the platform that made it;
a traced graph ran nowhere. This front door fills in this machine's backend
where the source names none, which is what a user tracing here means.
"""

from __future__ import annotations

from .analysis.copytax import PCIE_BANDWIDTH, CopyTax, recorded_backend
from .analysis.copytax import copy_tax as _copy_tax
from .devices import platform
from .model.graph import Graph
from .model.recording import Recording


def copy_tax(source: Graph | Recording, *, bandwidth: float = PCIE_BANDWIDTH,
             backend: str | None = None) -> CopyTax:
    """Copy-tax table of a traced graph (``um.trace``) or a recording (``um.profile``).

    ``bandwidth`` (bytes/s) sets the discrete-GPU model's bus; ``backend``
    ("metal", "cuda", "cpu") defaults to the platform that made the recording
    or, for a graph, to this one.
    """
    if backend is None and recorded_backend(source) is None:
        backend = platform().backend
    return _copy_tax(source, bandwidth=bandwidth, backend=backend)
