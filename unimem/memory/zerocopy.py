"""Zero-copy proofs: which NumPy <-> MLX conversions share memory on this platform.

The proof is ``np.shares_memory`` between the converted object and a NumPy view
of the MLX buffer (exact overlap of addresses), and a write through one side
seen by the other. Times are measured per conversion on fresh arrays (MLX's
buffer cache cleared first, so no buffer is recycled), so a first conversion's
cost (on CUDA, MLX moving a GPU output into managed memory) is in.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import mlx.core as mx
import numpy as np

from ..devices import platform
from ..model.text import TextRepr, fmt_bytes, fmt_time
from .residency import check_evaluated, np_view


def shares_memory(np_arr: Any, mx_arr: mx.array) -> bool:
    """True when the NumPy array ``np_arr`` aliases the memory of ``mx_arr``.

    ``mx_arr`` must be evaluated (unimem will not evaluate it for you). On CUDA,
    looking at a GPU output's address moves it into managed memory (see residency).
    """
    if not isinstance(np_arr, (np.ndarray, memoryview)):
        raise TypeError(f"shares_memory needs a NumPy array or memoryview first, "
                        f"got {type(np_arr).__name__}")
    check_evaluated(mx_arr, "shares_memory")
    np_side = np.frombuffer(np_arr, np.uint8) if isinstance(np_arr, memoryview) else np_arr
    return bool(np.shares_memory(np_side, np_view(mx_arr)))


@dataclass(frozen=True)
class Conversion:
    """One conversion, proven and timed here."""

    expr: str
    direction: str  # "MLX → NumPy" or "NumPy → MLX"
    zero_copy: bool | None  # None: the conversion raised here
    writes_visible: bool | None  # a write through the result changes the source; None: read-only
    seconds: float  # median, measured
    error: str = ""

    @property
    def verdict(self) -> str:
        if self.zero_copy is None:
            return "unsupported"
        return "zero-copy" if self.zero_copy else "copies"


Probe = Callable[[int], tuple[bool, "bool | None", float]]


def _to_numpy(convert: Callable[[Any], Any]) -> Probe:  # NumPy's converters: typed for NumPy
    def run(n: int) -> tuple[bool, bool | None, float]:
        mx.clear_cache()  # a new buffer each time, not one recycled (and moved) before
        # An op output on the default device that owns a new buffer (an element-wise
        # op could reuse its input's buffer, which on CUDA may be managed already).
        src = mx.random.uniform(shape=(n,))
        mx.eval(src)
        t = perf_counter()
        out = convert(src)
        dt = perf_counter() - t
        out = np.frombuffer(out, np.float32) if isinstance(out, memoryview) else out
        shared = shares_memory(out, src)
        if not out.flags.writeable:
            return shared, None, dt
        out[0] = -7.0
        return shared, src[0].item() == -7.0, dt
    return run


def _to_mlx(n: int) -> tuple[bool, bool | None, float]:
    src = np.arange(n, dtype=np.float32) + 1
    t = perf_counter()
    out = mx.array(src)
    mx.eval(out)
    dt = perf_counter() - t
    shared = shares_memory(src, out)
    src[0] = -7.0
    return shared, out[0].item() == -7.0, dt


CONVERSIONS: list[tuple[str, str, Probe]] = [
    ("np.asarray(a)", "MLX → NumPy", _to_numpy(np.asarray)),
    ("np.array(a, copy=False)", "MLX → NumPy", _to_numpy(lambda a: np.array(a, copy=False))),
    ("np.array(a)", "MLX → NumPy", _to_numpy(np.array)),
    ("memoryview(a)", "MLX → NumPy", _to_numpy(memoryview)),
    ("np.from_dlpack(a)", "MLX → NumPy", _to_numpy(np.from_dlpack)),
    ("mx.array(x)", "NumPy → MLX", _to_mlx),
]


@dataclass(repr=False)
class ZeroCopyReport(TextRepr):
    """Which conversions copy here, with proof and measured time."""

    _html_class = "unimem-zerocopy"

    backend: str
    nbytes: int
    repeat: int
    rows: list[Conversion]

    def lines(self) -> list[str]:
        head = (f"Zero-copy report ({self.backend}), float32 arrays of {fmt_bytes(self.nbytes)}, "
                f"median of {self.repeat} fresh conversions")
        out = [head]
        width = max(len(r.expr) for r in self.rows)
        for r in self.rows:
            if r.zero_copy is None:
                out.append(f"  {r.expr:<{width}}  {r.direction}  unsupported: {r.error}")
                continue
            proof = "np.shares_memory True" if r.zero_copy else "np.shares_memory False"
            write = {True: "writes visible", False: "writes not visible",
                     None: "read-only result"}[r.writes_visible]
            out.append(f"  {r.expr:<{width}}  {r.direction}  {r.verdict:<9}  {proof}, "
                       f"{write}, {fmt_time(r.seconds)}")
        out.append("  zero-copy conversions evaluate the array first; on CUDA, viewing a GPU "
                   "output moves it into managed memory")
        return out



def zero_copy_report(nbytes: int = 16 * 2**20, repeat: int = 5) -> ZeroCopyReport:
    """Prove and time each NumPy <-> MLX conversion on ``nbytes`` float32 arrays."""
    if not isinstance(nbytes, int) or nbytes < 4:
        raise ValueError(f"nbytes must be an int of at least 4, got {nbytes!r}")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    n = nbytes // 4
    rows = []
    for expr, direction, run in CONVERSIONS:
        try:
            results = [run(n) for _ in range(repeat)]
        except Exception as exc:  # noqa: BLE001 - e.g. DLPack on CUDA: the row says why
            rows.append(Conversion(expr, direction, None, None, 0.0, str(exc).split("\n")[0]))
            continue
        visible = [r[1] for r in results]
        rows.append(Conversion(expr, direction, all(r[0] for r in results),
                               None if None in visible else all(visible),
                               statistics.median(r[2] for r in results)))
    return ZeroCopyReport(platform().backend, n * 4, repeat, rows)
