"""unimem_native: MLX's pending graph and per-primitive stream timing, from C++.

The compiled module ``unimem_native._native`` is valid only for the exact MLX
version it was built against (it compiles in MLX's ``Primitive`` vtable and
``array`` layout). This package checks that version *before* loading it, so a
mismatch is a clear ImportError rather than a crash. Use it through
``unimem.capture.native``.
"""

import mlx.core as _mx  # registers mx.array with nanobind before _native loads

from ._build_info import MLX_VERSION

if _mx.__version__ != MLX_VERSION:
    raise ImportError(
        f"unimem_native was built against MLX {MLX_VERSION} but MLX {_mx.__version__} is "
        "installed; rebuild it: pip install --no-build-isolation --force-reinstall --no-deps "
        "./native (from unimem's repository)"
    )

from ._native import (  # noqa: E402
    FEATURES,
    Walk,
    capture,
    clear,
    encoding_primitive,
    node_events,
    now_ns,
    pending_count,
    records,
    start_node_capture,
    stop_node_capture,
)

__all__ = [
    "FEATURES",
    "MLX_VERSION",
    "Walk",
    "capture",
    "clear",
    "encoding_primitive",
    "node_events",
    "now_ns",
    "pending_count",
    "records",
    "start_node_capture",
    "stop_node_capture",
]
