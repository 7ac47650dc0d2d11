"""Where each page of an array lives now: Linux ``move_pages(2)`` in query mode.

``move_pages(pid=0, count, pages, nodes=NULL, status, 0)`` moves nothing: with no
target nodes the kernel only writes, per page, the NUMA node holding it or a
negative errno (``-ENOENT``: the page is not in host memory). This module takes
the measurement; the result, a ``Residency`` of ``unimem.model.memory``, is plain
data. What a page code means depends on the platform (see ``MEANINGS`` there):

* Apple (Metal): every MLX buffer is one shared-storage Metal buffer; the CPU and
  the GPU read the same physical pages, nothing migrates (macOS has no
  ``move_pages``, so pages are not probed).
* CUDA: a page on a host node is in host memory; ``-ENOENT`` means on the GPU or
  not yet host-visible. Observer effect: reading an array's address goes through
  MLX's ``Buffer::raw_ptr()``, which moves a GPU output out of device memory into
  CUDA managed memory (a copy on the GPU: its pages still report not-on-host). The
  probe never touches the data, so it migrates no page itself.
* CPU build: ordinary host memory, every written page on a host node.

The address comes from NumPy's zero-copy view of the array (``memoryview`` for
bfloat16), the least intrusive route MLX offers: no data is read or copied. An
array that was never scheduled is refused (taking its address would evaluate it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform as _os
import sys
from collections.abc import Callable
from time import perf_counter

import mlx.core as mx
import numpy as np

from ..devices import platform
from ..model.memory import NOT_PROBED, Residency
from ..model.text import fmt_dtype

_SYS_MOVE_PAGES = {"x86_64": 279, "amd64": 279, "aarch64": 239, "arm64": 239}


# -- the kernel call -----------------------------------------------------------
def _syscall() -> tuple[Callable[..., int] | None, int, str]:
    """libc ``syscall`` and move_pages' number, or None and why not."""
    if not sys.platform.startswith("linux"):
        return None, -1, f"move_pages(2) is Linux-only; this is {sys.platform}"
    number = _SYS_MOVE_PAGES.get(_os.machine().lower())
    if number is None:
        return None, -1, f"move_pages' syscall number is not known for {_os.machine()}"
    fn = ctypes.CDLL(None, use_errno=True).syscall
    fn.restype = ctypes.c_long
    return fn, number, ""


_SYSCALL, _NUMBER, _WHY_NOT = _syscall()
PAGE_SIZE = os.sysconf("SC_PAGESIZE") if hasattr(os, "sysconf") else 4096


def page_addresses(lo: int, hi: int, page_size: int = PAGE_SIZE) -> np.ndarray:
    """Start address of every page covering bytes [lo, hi) (uint64; empty when hi <= lo)."""
    if hi <= lo:
        return np.zeros(0, dtype=np.uint64)
    first = lo - lo % page_size
    n = -(-(hi - first) // page_size)
    return np.uint64(first) + np.arange(n, dtype=np.uint64) * np.uint64(page_size)


def query(addrs: np.ndarray, chunk: int = 1 << 18) -> tuple[np.ndarray, float, str]:
    """A code per page address: (codes, seconds in the kernel, error text or "").

    Query mode only (``nodes`` is NULL): the kernel reports and moves nothing.
    """
    n = len(addrs)
    codes = np.full(n, NOT_PROBED, dtype=np.int32)
    if _SYSCALL is None:
        return codes, 0.0, _WHY_NOT
    addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
    seconds = 0.0
    for s in range(0, n, chunk):
        k = min(chunk, n - s)
        t = perf_counter()
        rc = _SYSCALL(ctypes.c_long(_NUMBER), ctypes.c_int(0), ctypes.c_ulong(k),
                      ctypes.c_void_p(addrs.ctypes.data + 8 * s), None,
                      ctypes.c_void_p(codes.ctypes.data + 4 * s), ctypes.c_int(0))
        seconds += perf_counter() - t
        if rc < 0:
            err = ctypes.get_errno()
            codes[:] = NOT_PROBED
            return codes, seconds, (f"move_pages(2) failed: {errno.errorcode.get(err, err)} "
                                    f"({os.strerror(err)}); the kernel may lack NUMA support")
    return codes, seconds, ""


def query_pages(lo: int, hi: int) -> tuple[np.ndarray, float, str]:
    """Codes for the pages covering addresses [lo, hi); see :func:`query`."""
    return query(page_addresses(lo, hi))


# -- from an MLX array to an address range --------------------------------------
def check_evaluated(arr: object, what: str = "residency") -> mx.array:
    """The array, or a clear error: not an array, or never scheduled (lazy)."""
    if not isinstance(arr, mx.array):
        raise TypeError(f"{what} needs an mx.array, got {type(arr).__name__}")
    try:
        mx.get_array_buffer_size(arr)
    except ValueError:
        raise ValueError(
            f"{what}: this array has not been evaluated, so it has no memory yet. "
            "Call mx.eval(arr) (or mx.async_eval) first; unimem does not evaluate "
            "arrays for you, since that would change what you are measuring."
        ) from None
    return arr


def np_view(arr: mx.array) -> np.ndarray:
    """A zero-copy NumPy view of an evaluated array (raw bytes for bfloat16).

    On CUDA this is the observer effect: MLX moves a GPU output into managed
    memory to hand out a CPU pointer.
    """
    if arr.dtype == mx.bfloat16:  # NumPy has no bfloat16: view the raw bytes
        view = memoryview(arr)  # type: ignore[arg-type]  # mx.array is a buffer; stubs omit it
        if not view.contiguous:
            raise TypeError("a strided bfloat16 view has no NumPy equivalent: "
                            "use the array it was sliced from")
        return np.frombuffer(view, dtype=np.uint8)
    return np.asarray(arr)


def host_span(view: np.ndarray) -> tuple[int, int]:
    """(first byte, end byte) that a NumPy view addresses; (0, 0) when empty."""
    if view.size == 0:
        return 0, 0
    lo, hi = np.lib.array_utils.byte_bounds(view) if hasattr(np.lib, "array_utils") \
        else np.byte_bounds(view)  # type: ignore[attr-defined]  # pragma: no cover - NumPy < 2
    return int(lo), int(hi)


def residency(arr: mx.array, *, name: str = "") -> Residency:
    """Where each page of ``arr`` lives now (query only: no page is moved).

    Raises TypeError for a non-array and ValueError for an array never scheduled;
    one scheduled but still computing is waited for (NumPy's view waits), never
    evaluated. On a platform without ``move_pages`` the result says so
    (``probed`` False).
    """
    return residencies([(name, arr)])[0]


def residencies(named: list[tuple[str, mx.array]]) -> list[Residency]:
    """Residency of several arrays with one kernel call (what live views use).

    Each result's ``seconds`` is its share of the call, by page count.
    """
    for _, arr in named:
        check_evaluated(arr)
    backend = platform().backend
    views = [np_view(arr) for _, arr in named]  # held while probing: addresses stay valid
    spans = [page_addresses(*host_span(v)) for v in views]
    codes, seconds, why = query(np.concatenate(spans) if spans else np.zeros(0, np.uint64))
    del views
    total = max(1, len(codes))
    out, at = [], 0
    for (name, arr), addrs in zip(named, spans):
        n = len(addrs)
        res = Residency(tuple(arr.shape), fmt_dtype(arr.dtype),
                        int(arr.nbytes), PAGE_SIZE, codes[at:at + n], backend, not why,
                        seconds * n / total, why, name)
        if backend == "metal" and why:
            res.message = "macOS has no move_pages(2); on Apple silicon there is one shared copy"
        out.append(res)
        at += n
    return out
