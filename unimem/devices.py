"""What MLX has here: devices, their memory model in plain words, limits.

The card is driven only by what MLX reports (``mx.metal.is_available``,
``mx.cuda.is_available``, ``mx.device_info``), so the Apple, CUDA and CPU-only
paths are the same code.
"""

from __future__ import annotations

import platform as _os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import mlx.core as mx

from .capture import cuda_kernels, native
from .model.text import TextRepr

MEMORY_MODELS = {
    "unified": (
        "Unified: the CPU and the GPU use one pool of memory. Every MLX buffer is a "
        "shared Metal buffer, so handing an array from one device to the other copies "
        "nothing; the streams only synchronise."
    ),
    "managed": (
        "Managed: the GPU has memory of its own. A GPU output stays in device memory "
        "until the CPU needs it; MLX then moves it into CUDA managed memory, whose pages "
        "migrate between host and GPU on first touch."
    ),
    "managed-cpu": (
        "Managed, seen from the CPU: on a CUDA build, arrays made by CPU ops live in CUDA "
        "managed memory. The GPU can read them directly (pages migrate to it on fault), and "
        "a GPU output the CPU reads is first moved into managed memory by MLX."
    ),
    "host": (
        "Host only: this MLX build has no GPU. Every array lives in ordinary host "
        "memory, and only CPU streams exist."
    ),
}


@dataclass(frozen=True)
class DeviceCard:
    """One device as MLX reports it."""

    kind: str  # "cpu" or "gpu"
    name: str
    backend: str  # "cpu", "metal" or "cuda"
    memory_model: str  # a key of MEMORY_MODELS
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def memory_words(self) -> str:
        return MEMORY_MODELS[self.memory_model]


@dataclass(frozen=True)
class Platform:
    """The facts every view and notebook branches on, read once per process."""

    mlx_version: str
    system: str
    machine: str
    backend: str  # "metal", "cuda" or "cpu"
    devices: tuple[DeviceCard, ...]
    memory_limit: int

    @property
    def has_gpu(self) -> bool:
        return any(d.kind == "gpu" for d in self.devices)

    @property
    def memory_model(self) -> str:
        return {"metal": "unified", "cuda": "managed"}.get(self.backend, "host")

    @property
    def summary(self) -> str:
        build = {
            "metal": "Metal build (Apple silicon)",
            "cuda": "CUDA build",
            "cpu": "CPU-only build",
        }[self.backend]
        return f"{self.system} {self.machine}, MLX {self.mlx_version}, {build}"

    def device(self, kind: str) -> DeviceCard | None:
        return next((d for d in self.devices if d.kind == kind), None)


def _backend() -> str:
    if mx.metal.is_available():
        return "metal"
    if mx.cuda.is_available():
        return "cuda"
    return "cpu"


@lru_cache(maxsize=1)
def platform() -> Platform:
    """The platform card's facts (cached: devices do not change in a process)."""
    backend = _backend()
    cpu_info = dict(mx.device_info(mx.cpu))
    cpu_model = {"metal": "unified", "cuda": "managed-cpu"}.get(backend, "host")
    devices = [
        DeviceCard("cpu", str(cpu_info.get("device_name", "CPU")), "cpu", cpu_model, cpu_info)
    ]
    if mx.is_available(mx.gpu):
        gpu_info = dict(mx.device_info(mx.gpu))
        model = "unified" if backend == "metal" else "managed"
        devices.append(
            DeviceCard("gpu", str(gpu_info.get("device_name", "GPU")), backend, model, gpu_info)
        )
    return Platform(
        mlx_version=mx.__version__,  # type: ignore[attr-defined]  # not in MLX's stubs
        system=_os.system(),
        machine=_os.machine(),
        backend=backend,
        devices=tuple(devices),
        memory_limit=int(mx.get_memory_limit()),
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


_INFO_KEYS = ("memory_size", "total_memory", "max_recommended_working_set_size")


class About(TextRepr):
    """The platform card: one text for terminals, nbval and Jupyter."""

    _html_class = "unimem-about"

    def __init__(self, p: Platform, capture: str = "") -> None:
        self.platform = p
        self.capture = capture  # which capture method runs here, and why

    def rows(self) -> list[tuple[str, str]]:
        """The card as (field, value) pairs; continuation lines have an empty field."""
        p = self.platform
        rows = [("MLX", f"{p.mlx_version} ({p.summary})")]
        for d in p.devices:
            rows.append((f"mx.{d.kind}", f"{d.name} [{d.backend}]"))
            rows.append(("", d.memory_words))
            for key in _INFO_KEYS:
                if key in d.info:
                    rows.append(("", f"{key}: {_gib(int(d.info[key]))}"))
        if not p.has_gpu:
            rows.append(
                ("mx.gpu", "absent: use CPU streams ('cpu', 'cpu:1', ...) to run work side by side")
            )
        rows.append(("memory limit", _gib(p.memory_limit)))
        if self.capture:
            rows.append(("capture", self.capture))
        return rows

    def lines(self) -> list[str]:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return ["unimem platform card", *(f"  {k:<{width}}  {v}" for k, v in rows)]


def about() -> About:
    """A card describing MLX's devices here, how each one sees memory, and how unimem
    captures runs here (native probe or not, and why)."""
    return About(platform(), capture_method())


def gpu_method() -> str:
    """How ``profile``, ``compare`` and ``explore`` record GPU streams here: ``"cupti"``
    (every kernel timed on the device by CUPTI, see ``capture/cuda_kernels.py``),
    ``"segment"`` (hand-offs: ends measured, starts derived), or ``""`` where MLX has
    no GPU. ``watch`` hands GPU work off in segments wherever it runs."""
    if not platform().has_gpu:
        return ""
    return "cupti" if cuda_kernels.available() else "segment"


def capture_method() -> str:
    """One line: the method profile, trace and watch use here by default, and why."""
    if not native.available():
        return f"native probe absent: {native.why_unavailable()}"
    gpu = ""
    if gpu_method() == "cupti":
        gpu = "; GPU streams: every kernel timed on the device by CUPTI, live in um.watch too"
    elif gpu_method() == "segment":
        gpu = f"; GPU streams: the hand-off method ({cuda_kernels.why_unavailable()})"
    return ("native probe built: every CPU primitive walked and timed at both ends "
            f"on its stream's worker{gpu}")
