"""A distributed job on one time axis: record every rank, run jobs, merge them.

Inside each process of an ``mx.distributed`` job (started by ``mlx.launch``),
``with um.watch_rank():`` records like ``um.watch`` and adds who recorded (rank,
world size, host, backend) and ping-pong stamps with the neighbouring ranks, made
through ``mx.distributed`` at the start and the end, that tie the clocks together.
``um.merge`` puts the ranks' recordings on rank 0's clock and joins their
collectives; ``um.launch`` runs a script under ``mlx.launch`` from a notebook and
merges what its ranks recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from time import time_ns
from types import TracebackType
from typing import Any

import mlx.core as mx

from .analysis.merge import Merge, merge
from .capture import native, ranks
from .errors import ArgumentValueError, UnimemError
from .model.ranks import Exchange
from .model.recording import Recording
from .watcher import Watch, watch

RANK_DIR = "UNIMEM_RANK_DIR"  # where um.launch asks each rank to write its recording
# mlx.launch, run by this Python (the console script may not be on PATH)
_LAUNCHER = ("import sys; from mlx._distributed_utils.launch import main; "
             "sys.argv[0] = 'mlx.launch'; sys.exit(main())")


class DistributedJobError(UnimemError):
    """A job under ``um.launch`` failed or did not record every rank."""


class RankWatch:
    """``um.watch`` for one rank of a job, tied to the others' clocks (``watch_rank``)."""

    def __init__(self, path: str | os.PathLike[str] | None, sync: str,
                 watch_kwargs: dict[str, Any]) -> None:
        if sync not in ("auto", *ranks.SYNCS):
            raise ArgumentValueError(f"sync must be 'auto' or one of {ranks.SYNCS}, got "
                                     f"{sync!r}")
        self.path, self.sync, self._kwargs = path, sync, watch_kwargs
        self.group: Any = None
        self.watch: Watch | None = None
        self._start: list[Exchange] = []

    @property
    def recording(self) -> Recording:
        if self.watch is None:
            raise RuntimeError("the rank's watch has not started")
        return self.watch.recording

    def __enter__(self) -> RankWatch:  # noqa: PYI034 (Self needs Python 3.11)
        self.group = ranks.group()
        if self.group is None:
            raise DistributedJobError(
                "watch_rank records one rank of an mx.distributed job, but this process is "
                "not one of several ranks: start the script with mlx.launch (or um.launch)")
        if self.sync == "auto":
            self.sync = ranks.method(ranks.backend())
        self._start = ranks.sync(self.group, "start", self.sync)
        kwargs = {"display": False, "title": f"rank {self.group.rank()}", **self._kwargs}
        if "mode" not in kwargs and native.available() and mx.default_device() == mx.cpu:
            # a rank computing on its CPU (the ring backend) is recorded natively even on a
            # machine with a GPU (um.watch's own "auto" keeps GPU machines on hand-offs)
            kwargs["mode"] = "native"
        self.watch = watch(**kwargs)
        self.watch.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.watch is not None
        self.watch.__exit__(exc_type, exc, tb)
        if exc_type is not None:  # the other ranks may never reach the end sync
            if os.environ.get(RANK_DIR):  # um.launch says which rank failed, and first
                failed = Path(os.environ[RANK_DIR]) / f"rank{self.group.rank()}.failed"
                failed.write_text(json.dumps({"at_ns": time_ns(), "error": "".join(
                    traceback.format_exception(exc_type, exc, tb))}))
            return
        end = ranks.sync(self.group, "end", self.sync)
        rec = self.watch.recording
        rec.rank = ranks.info(self.group, int(self.watch.t0 * 1e9), self._start + end,
                              self.sync)
        where = self.path
        if where is None and os.environ.get(RANK_DIR):
            where = Path(os.environ[RANK_DIR]) / f"rank{self.group.rank()}.json"
        if where is not None:
            rec.to_chrome_trace(str(where))


def watch_rank(path: str | os.PathLike[str] | None = None, *, sync: str = "auto",
               **watch_kwargs: Any) -> RankWatch:
    """Record this rank of an ``mx.distributed`` job (inside a script ``mlx.launch`` runs).

    Saved as a Chrome trace to ``path``, or where ``um.launch`` asks; ``watch_kwargs``
    go to ``um.watch`` (no live display by default: ranks run outside notebooks).
    ``sync`` says how the clocks are tied: "send/recv" ping-pongs (the tighter bound),
    "all_gather" rounds, or "auto": all_gather where the backend has no send/recv
    (NCCL), ping-pongs elsewhere. Every rank of a job must use the same.
    """
    return RankWatch(path, sync, watch_kwargs)


def launch(script: str | os.PathLike[str], *args: str, n: int = 2, backend: str = "ring",
           launcher_args: tuple[str, ...] = (), timeout: float = 300.0,
           python: str | None = None) -> Merge:
    """Run ``script`` as an ``n``-rank job under ``mlx.launch`` and merge its ranks.

    Each rank records with ``um.watch_rank()``. ``launcher_args`` pass through to
    ``mlx.launch`` (``--hosts``, ``--hostfile``, ...); the default is the ring backend on
    this machine. A rank that fails, or that records nothing, raises
    :class:`DistributedJobError` naming the rank that failed first, with its
    traceback, and the job's output. (``mlx.launch`` exits 0 even when a rank failed,
    so the ranks' own reports are read, not its exit code alone.)
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of ranks, got {n!r}")
    script = Path(script)
    if not script.exists():
        raise FileNotFoundError(f"no script {str(script)!r}")
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="unimem-ranks-") as out:
        env = {**os.environ, RANK_DIR: out}
        root = str(Path(__file__).resolve().parents[1])  # the ranks import this unimem
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [python, "-c", _LAUNCHER, "-n", str(n), "--backend", backend, *launcher_args,
               python, str(script.resolve()), *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DistributedJobError(f"the job ran past {timeout:g} s and was stopped; "
                                      f"its output:\n{_tail(exc.stdout, exc.stderr)}") from None
        files = sorted(Path(out).glob("rank*.json"))
        recorded = sorted(int(f.stem.removeprefix("rank")) for f in files)
        failed = _failures(Path(out))
        if done.returncode != 0 or len(files) != n or failed:
            absent = sorted(set(range(n)) - set(recorded))
            first = ""
            if failed:
                (rank, error), *after = failed
                later = f" (then {', '.join(f'rank {r}' for r, _ in after)})" if after else ""
                first = f"Rank {rank} failed first{later}:\n{error}\n"
            raise DistributedJobError(
                f"the {n}-rank job failed: mlx.launch exited with code {done.returncode}; "
                f"ranks that recorded nothing: {absent or 'none'}. Each rank must run its "
                f"work inside `with um.watch_rank():`.\n{first}"
                f"The job's output:\n{_tail(done.stdout, done.stderr)}")
        return merge(files)


def _failures(out: Path) -> list[tuple[int, str]]:
    """(rank, traceback) of each rank whose watch ended in an exception, first first:
    when one rank fails the others usually fail after it, having lost their peer."""
    reports = []
    for f in out.glob("rank*.failed"):
        report = json.loads(f.read_text())
        reports.append((report["at_ns"], int(f.stem.removeprefix("rank")), report["error"]))
    return [(rank, error) for _, rank, error in sorted(reports)]


def _tail(stdout: Any, stderr: Any, lines: int = 40) -> str:
    text = "\n".join(x.decode() if isinstance(x, bytes) else x for x in (stdout, stderr) if x)
    return "\n".join(text.splitlines()[-lines:])
