"""Recordings at scale: export, load and the timeline's state, for 20,000 and 100,000 ops.

A chain of ops alternating between two lanes (a cross-stream flow per op, the
worst case for flows), built by hand so that only unimem's own code is timed:
``Recording.to_chrome_trace`` to a file, ``Recording.load`` of it, and a
``Timeline`` of the loaded recording (its default window, and the whole recording).
Run from the repo root:

    PYTHONPATH=. python3 benchmarks/scale.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from factory import make_recording

import unimem as um
from unimem.model.text import fmt_bytes, fmt_time


def chain(n: int) -> um.Recording:
    return make_recording(
        ({"lane": i % 2, "calls": "Exp", "submit": i * 1e-6, "start": i * 1e-6,
          "end": (i + 1) * 1e-6, "inputs": (i - 1,) if i else ()} for i in range(n)),
        title=f"chain of {n}", mode="native", method="built by hand", nbytes=16,
        memory=[(i * 1e-5, 16 * i, 0, 16 * i) for i in range(n // 100)])


def state_bytes(tl: um.Timeline) -> int:
    """What a notebook saved with widget state keeps of the timeline: payload and meta."""
    return len(tl._payload) + len(json.dumps(tl._meta))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for n in (20_000, 100_000):
            rec = chain(n)
            path = Path(tmp) / f"chain{n}.json"
            t0 = perf_counter()
            rec.to_chrome_trace(path)
            t1 = perf_counter()
            back = um.Recording.load(path)
            t2 = perf_counter()
            tl = um.Timeline(back)
            t3 = perf_counter()
            full = um.Timeline(back, window=n)
            t4 = perf_counter()
            assert len(back.ops) == n
            print(f"{n:>7,} ops: export {fmt_time(t1 - t0)} ({fmt_bytes(path.stat().st_size)}), "
                  f"load {fmt_time(t2 - t1)}; timeline state {fmt_bytes(state_bytes(tl))} "
                  f"({fmt_time(t3 - t2)}, default window), {fmt_bytes(state_bytes(full))} "
                  f"({fmt_time(t4 - t3)}, every op)", flush=True)
            tl.close()
            full.close()


if __name__ == "__main__":
    main()
