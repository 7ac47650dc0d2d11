"""Synthetic recordings for tests and benchmarks: one builder instead of one per file.

    make_recording([(0, "exp", 0.0, 1.0), (1, "sin", 1.0, 2.0, (0,))])

gives lanes "cpu" and "cpu:1", op ids in list order, and a flow for every input
read across lanes, classified as the recorder classifies it. Tests import it as
``from factory import make_recording`` (pytest puts tests/ on the path, next to
conftest.py); benchmarks put tests/ on ``sys.path`` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unimem.model.recording import (
    UNTRACKED_LANE,
    Calls,
    Lane,
    MemorySample,
    Op,
    Recording,
)

# (lane, calls, start, end) or (lane, calls, start, end, inputs); calls may be a bare
# kind ("exp": one call); submit is 0. A mapping gives any Op field by name instead.
OpSpec = tuple[Any, ...] | Mapping[str, Any]


def lane(i: int, name: str) -> Lane:
    """Lane ``i`` named like the recorder names them: "cpu", "cpu:1", "gpu", "untracked"."""
    if name == UNTRACKED_LANE:
        return Lane(i, name, "?", -1)
    return Lane(i, name, name.split(":")[0], i)


def make_recording(
    ops: Iterable[OpSpec | Op] = (),
    *,
    lanes: Sequence[str | Lane] = ("cpu", "cpu:1"),
    title: str = "built",
    placement: Mapping[str, str] | None = None,
    mode: str = "segment",
    method: str = "built by hand",
    memory: Iterable[MemorySample | tuple[float, int, int, int]] = (),
    flows: bool = True,
    **common: Any,
) -> Recording:
    """A Recording from op specs (or ready Ops, whose ids must be their positions).

    ``common`` gives Op fields every spec gets unless it says otherwise (``nbytes=16``);
    ``flows=False`` records no flows; ``memory`` takes samples or (t, active, cache, peak).
    """
    rec = Recording(title, dict(placement or {}), mode, method,
                    [x if isinstance(x, Lane) else lane(i, x) for i, x in enumerate(lanes)])
    for spec in ops:
        op = spec if isinstance(spec, Op) else _op(len(rec.ops), spec, common)
        if flows:
            rec.add_op(op)
        else:
            assert op.id == len(rec.ops), f"op {op.id} given at position {len(rec.ops)}"
            rec.ops.append(op)
    rec.memory += [s if isinstance(s, MemorySample) else MemorySample(*s) for s in memory]
    return rec


def _op(i: int, spec: OpSpec, common: Mapping[str, Any]) -> Op:
    if isinstance(spec, Mapping):
        fields = {"submit": 0.0, **common, **spec}
    else:
        lane_id, calls, start, end, *inputs = spec
        fields = {"submit": 0.0, **common, "lane": lane_id, "calls": calls, "start": start,
                  "end": end}
        if inputs:
            fields["inputs"] = tuple(inputs[0])
    calls: str | Calls = fields.pop("calls")  # a bare kind: Op makes it one call
    return Op(i, fields.pop("lane"), calls, **fields)
