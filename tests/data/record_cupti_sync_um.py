"""Record ``cupti_sync_um_h200.json.gz`` again, on a CUDA machine with cupti-python.

Two runs, each after two warm-up runs, with every CUPTI record kind unimem asks for
(kernels, memcpy/memset, synchronisation calls, CUDA events, unified-memory counters)
and the graph-node callbacks: a hand-off (a GPU ``exp`` of 16 MiB read by a CPU
``sum``, MLX's cache emptied first) and a GEMM on one GPU stream read by an ``exp`` on
another. The file keeps the raw record fields (``cupti_records.FIELDS``), so the tests
parse them as a live run would. From the repository's root:

    PYTHONPATH=. python3 tests/data/record_cupti_sync_um.py OUT_DIR
"""

from __future__ import annotations

import datetime
import gzip
import json
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlx.core as mx

from unimem.capture import cuda_kernels, native
from unimem.capture.call import flatten_arrays

SECOND_GPU_STREAM = mx.new_stream(mx.gpu)


def handoff(x: mx.array) -> mx.array:
    mx.clear_cache()
    y = mx.exp(x, stream=mx.gpu)
    return mx.sum(y, stream=mx.cpu)


def two_streams(a: mx.array, b: mx.array) -> mx.array:
    x = mx.matmul(a, b, stream=mx.gpu)
    return mx.exp(x, stream=SECOND_GPU_STREAM)


def one_run(fn: Any, *args: mx.array) -> dict[str, Any]:
    """One traced run: the walked nodes, the node callbacks and CUPTI's raw records."""
    trace = cuda_kernels.KernelTrace()
    trace.start()
    t0 = time.perf_counter_ns()
    out = flatten_arrays(fn(*args))
    graph = native.capture(out, gpu=True)
    mx.eval(out)
    t1 = time.perf_counter_ns()
    cap = trace.stop()
    # the raw fields, as CUPTI's callback filed them, without the warm-up's records
    raw = [dict(r) for r in trace._sink if "start" not in r or int(r["start"]) >= trace._since]
    native.records(drain=True)
    c = graph.columns
    nodes = [{"id": i, "name": n, "device": d, "stream": s, "wrapped": w}
             for i, n, d, s, w in zip(c["id"], c["name"], c["device"], c["stream"], c["wrapped"])]
    events = [{"event": "cloned" if e.cloned else "created", "graph": e.node >> 32,
               "local": e.node & 0xFFFFFFFF, "primitive": e.primitive,
               **({"orig_graph": e.original >> 32, "orig_local": e.original & 0xFFFFFFFF}
                  if e.cloned else {})} for e in cap.node_events]
    for r in raw:
        for k, v in list(r.items()):
            if hasattr(v, "tolist"):
                r[k] = v.tolist()
    return {"clock": {"offset_ns": cap.offset_ns, "error_ns": cap.error_ns}, "t0_ns": t0,
            "t1_ns": t1, "nodes": nodes, "node_events": events, "records": raw,
            "why_no_migrations": cap.migrations_why_not}


def main(out_dir: str) -> None:
    if not cuda_kernels.available():
        raise SystemExit(f"needs CUPTI: {cuda_kernels.why_unavailable()}")
    x = mx.random.uniform(shape=(4 << 20,))
    a, b = mx.random.uniform(shape=(4096, 512)), mx.random.uniform(shape=(512, 4))
    mx.eval(x, a, b)
    for _ in range(2):
        one_run(handoff, x)
        one_run(two_streams, a, b)
    runs = {"handoff_cold": one_run(handoff, x), "two_gpu_streams": one_run(two_streams, a, b)}
    now = datetime.datetime.now(datetime.timezone.utc)
    recorded = {
        "machine": "NVIDIA H200 (driver 580), 16 host cores",
        "mlx": f"{mx.__version__} (mlx-cuda-13)", "cupti_python": version("cupti-python"),
        "date": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "how": ("unimem's GPU probe (KernelTrace): CUPTI activity records (CONCURRENT_KERNEL, "
                "MEMCPY, MEMSET, SYNCHRONIZATION, CUDA_EVENT, UNIFIED_MEMORY_COUNTER) and "
                "graph-node callbacks, one plain mx.eval per run after two warm-up runs; the "
                "graph walk's nodes of the same run; tests/data/record_cupti_sync_um.py")}
    path = Path(out_dir) / "cupti_sync_um_h200.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"recorded": recorded, "runs": runs}, f, separators=(",", ":"))
    for name, run in runs.items():
        kinds = Counter(r["kind"] for r in run["records"])
        print(name, dict(kinds), "why no UM:", run["why_no_migrations"] or "-")
    print("written", path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
