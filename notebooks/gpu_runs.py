"""The runs of lesson 07, recorded live on a GPU or loaded from recordings made on one.

On MLX's CUDA build with cupti-python (``um.gpu_method() == "cupti"``) lesson 07
records these runs itself. Everywhere else it loads what this script recorded on a
GPU machine, stored beside it in ``recordings/`` as gzipped Chrome traces; each says
where, when and with what it was made (``Recording.platform``) and :data:`INDEX`
(``recordings/index.json``) repeats it with the command. To record them again, on a
CUDA machine, from the repository's root:

    python notebooks/gpu_runs.py --record

The runs: the docs' ``fun`` all on the GPU and split (matmul on the GPU, the exps on
the CPU), a hand-off where the CPU reads a GPU output (with MLX's buffer cache emptied
first, and as a loop runs it: from the cache), and an ``mlx.nn`` MLP step.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.optimizers as optim
from mlx import nn

import unimem as um

HERE = Path(__file__).with_name("recordings")
INDEX_PATH = HERE / "index.json"
NAMES = ("fun_all_gpu", "fun_split", "handoff_cold", "handoff_warm", "mlp_step")
HANDOFF_BYTES = 16 * 2**20  # the GPU output the CPU reads: 16 MiB of float32


def fun(a, b, d1, d2):
    """The function from MLX's unified-memory page."""
    x = mx.matmul(a, b, stream=d1)
    for _ in range(500):
        b = mx.exp(b, stream=d2)
    return x, b


def handoff(x):
    """The GPU makes y; the CPU reads it (MLX moves y where the CPU can read it)."""
    y = mx.exp(x, stream=mx.gpu)
    return mx.sum(y, stream=mx.cpu)


def handoff_cold(x):
    """The same, with MLX's buffer cache emptied first: y gets fresh device memory."""
    mx.clear_cache()
    return handoff(x)


def mlp_step_fn() -> tuple[Callable[..., Any], tuple[mx.array, mx.array]]:
    """One SGD step of a 3-layer MLP on the default device, and its batch."""
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    opt = optim.SGD(learning_rate=0.01)
    mx.eval(model.parameters())
    loss_and_grad = nn.value_and_grad(
        model, lambda m, x, y: nn.losses.cross_entropy(m(x), y).mean())

    def mlp_step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss, model.parameters()

    x, y = mx.random.normal((128, 32)), mx.random.randint(0, 10, (128,))
    mx.eval(x, y)
    return mlp_step, (x, y)


def record(repeat: int = 10) -> dict[str, um.Recording]:
    """The four runs, profiled here (needs a GPU; kernels need CUPTI)."""
    a = mx.random.uniform(shape=(4096, 512))  # the sizes of MLX's docs example
    b = mx.random.uniform(shape=(512, 4))
    x = mx.random.uniform(shape=(HANDOFF_BYTES // 4,))
    mx.eval(a, b, x)
    step, batch = mlp_step_fn()
    return {
        "fun_all_gpu": um.profile(fun, a, b, d1="gpu", d2="gpu", repeat=repeat),
        "fun_split": um.profile(fun, a, b, d1="gpu", d2="cpu", repeat=repeat),
        "handoff_cold": um.profile(handoff_cold, x, repeat=repeat),
        "handoff_warm": um.profile(handoff, x, repeat=repeat),
        "mlp_step": um.profile(step, *batch, repeat=repeat),
    }


def load(name: str) -> um.Recording:
    """A stored recording, made on a GPU machine (see :data:`INDEX`)."""
    with gzip.open(HERE / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        return um.Recording.load(json.load(f))


def _index() -> dict[str, Any]:
    return json.loads(INDEX_PATH.read_text(encoding="utf-8")) if INDEX_PATH.exists() else {}


INDEX = _index()


def _machine() -> dict[str, str]:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True,
                         check=False).stdout.strip()
    name, _, driver = gpu.partition(", ")
    from importlib.metadata import version
    return {"machine": f"one {name} (driver {driver}), {platform.machine()} host",
            "mlx": mx.__version__, "cupti-python": version("cupti-python"),
            "date": datetime.date.today().isoformat(),
            "command": "python notebooks/gpu_runs.py --record"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="record the runs and store them")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    if not args.record:
        ap.error("nothing to do: --record records the runs (on a CUDA machine with CUPTI)")
    if um.gpu_method() != "cupti":
        raise SystemExit("recording needs MLX's CUDA build and cupti-python: "
                         f"{um.about().capture}")
    where = _machine()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rec in record().items():
        rec.platform.update({k: where[k] for k in ("machine", "date", "cupti-python")})
        with gzip.open(args.out / f"{name}.json.gz", "wt", encoding="utf-8") as f:
            json.dump(rec.to_chrome_trace(), f, separators=(",", ":"))
        print(name, rec.mode, len(rec.ops), "ops;", um.gpu_activity(rec).lines()[0])
    (args.out / "index.json").write_text(json.dumps(
        {**where, "runs": list(NAMES)}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
