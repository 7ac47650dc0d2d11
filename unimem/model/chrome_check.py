"""Field checks for reading Chrome traces: each value is checked once, where it is read.

A check either returns the value, typed, or raises :class:`TraceFormatError`
naming where it is (an event by its index in ``traceEvents``, or a metadata entry),
the field, the value given and what is accepted::

    event 4 (ph 'X', name 'exp'): dur is -3.0 (a float); accepted: a finite number >= 0

Only what the Trace Event Format and unimem's layout allow passes: numbers are
finite (no NaN, no infinity, no bool), integers are integers, and every index
points at something that exists. The traced graph stored with a recording is
read here too (:func:`graph`), with the same checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import TraceFormatError
from .graph import ArrayInfo, Graph, Node, StreamId

MISSING: Any = object()  # a field absent from its object
INT64 = 2**63  # pids, tids, stream indices and byte counts fit a signed 64-bit integer
# Times: Perfetto holds them as int64 nanoseconds (up to 9.2e15 µs); unimem takes up to
# 9e15 µs (about 285 years) either side of its origin, so saving again stays in range.
MAX_US = 9e15
MAX_S = MAX_US / 1e6


def short(value: object) -> str:
    """A value's repr, cut short for a message."""
    out = repr(value)
    return out if len(out) <= 60 else out[:57] + "..."


def show(value: object) -> str:
    """A value as an error message quotes it: its repr, cut short, and its type."""
    if value is MISSING:
        return "missing"
    return short(value) if value is None else f"{short(value)} (a {type(value).__name__})"


@dataclass(frozen=True)
class At:
    """Where a value sits: an event of ``traceEvents`` or an entry of the metadata."""

    where: str  # "event 4 (ph 'X', name 'exp')" or "otherData.unimem.lanes[1]"
    event: int | None = None

    @classmethod
    def of_event(cls, index: int, event: dict[str, Any]) -> At:
        ph, name = event.get("ph"), event.get("name")
        label = f"ph {short(ph)}" + (f", name {short(name)}" if isinstance(name, str) else "")
        return cls(f"event {index} ({label})", index)

    def fail(self, field: str, given: object, accepted: str) -> NoReturn:
        raise TraceFormatError(f"{self.where}: {field} is {show(given)}; accepted: {accepted}",
                               event=self.event, field=field)


def integer(at: At, field: str, value: object, lo: int = 0, hi: int = INT64 - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        what = f"an integer >= {lo}" if hi == INT64 - 1 else f"an integer from {lo} to {hi}"
        at.fail(field, value, what)
    return value


def number(at: At, field: str, value: object, lo: float | None = None,
           hi: float | None = None) -> float:
    """A finite number (JSON int or float), as a float, from ``lo`` to ``hi`` if given."""
    accepted = "a finite number" + ("" if lo is None else f" >= {lo:g}") + (
        "" if hi is None else f"{'' if lo is None else ' and'} <= {hi:g}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        at.fail(field, value, accepted)
    try:
        out = float(value)
    except OverflowError:  # an integer too large for a float
        at.fail(field, value, accepted)
    if not math.isfinite(out) or (lo is not None and out < lo) or (hi is not None and out > hi):
        at.fail(field, value, accepted)
    return out


def time_us(at: At, field: str, value: object, lo: float = -MAX_US) -> float:
    """A time or duration in microseconds, as the Trace Event Format gives them."""
    return number(at, field, value, lo, MAX_US)


def time_s(at: At, field: str, value: object, lo: float = -MAX_S) -> float:
    """A time or duration in seconds, as unimem's metadata gives them."""
    return number(at, field, value, lo, MAX_S)


def text(at: At, field: str, value: object) -> str:
    if not isinstance(value, str):
        at.fail(field, value, "a string")
    return value


def flag(at: At, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        at.fail(field, value, "true or false")
    return value


def array(at: At, field: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        at.fail(field, value, "a JSON array")
    return value


def obj(at: At, field: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        at.fail(field, value, "a JSON object")
    return value


class Fields:
    """One JSON object's fields, each checked as it is read; ``prefix`` names the object."""

    def __init__(self, at: At, value: object, prefix: str = "", what: str = "the entry"
                 ) -> None:
        self.at, self.prefix = at, prefix
        self.d = obj(at, prefix.rstrip(".") or what, value)

    def get(self, key: str) -> Any:
        return self.d.get(key, MISSING)

    def name(self, key: str) -> str:
        return self.prefix + key

    def integer(self, key: str, lo: int = 0, hi: int = INT64 - 1) -> int:
        return integer(self.at, self.name(key), self.get(key), lo, hi)

    def time_us(self, key: str, lo: float = -MAX_US) -> float:
        return time_us(self.at, self.name(key), self.get(key), lo)

    def time_s(self, key: str, lo: float = -MAX_S) -> float:
        return time_s(self.at, self.name(key), self.get(key), lo)

    def optional(self, key: str, unit: str = "s", lo: float | None = None) -> float | None:
        """null, or a time in ``unit`` ("s" or "us")."""
        value = self.get(key)
        if value is None:
            return None
        hi = MAX_S if unit == "s" else MAX_US
        lo = -hi if lo is None else lo
        if value is MISSING:
            self.at.fail(self.name(key), value, f"null or a finite number >= {lo:g} and "
                         f"<= {hi:g}")
        return number(self.at, self.name(key), value, lo, hi)

    def text(self, key: str) -> str:
        return text(self.at, self.name(key), self.get(key))

    def flag(self, key: str) -> bool:
        return flag(self.at, self.name(key), self.get(key))

    def array(self, key: str) -> list[Any]:
        return array(self.at, self.name(key), self.get(key))

    def fields(self, key: str) -> Fields:
        return Fields(self.at, self.get(key), self.name(key) + ".")

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(text(self.at, f"{self.name(key)}[{i}]", v)
                     for i, v in enumerate(self.array(key)))

    def integers(self, key: str, lo: int = 0, hi: int = INT64 - 1) -> tuple[int, ...]:
        return tuple(integer(self.at, f"{self.name(key)}[{i}]", v, lo, hi)
                     for i, v in enumerate(self.array(key)))

    def shapes(self, key: str) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(integer(self.at, f"{self.name(key)}[{i}][{j}]", n)
                           for j, n in enumerate(array(self.at, f"{self.name(key)}[{i}]", s)))
                     for i, s in enumerate(self.array(key)))

    def names(self, key: str) -> dict[str, str]:
        """An object of strings (a placement, a platform)."""
        d = obj(self.at, self.name(key), self.get(key))
        return {k: text(self.at, f"{self.name(key)}.{k}", v) for k, v in d.items()}


class Shown(str):
    """A graph node's argument as saved: already its repr (``Graph.to_dict`` writes
    ``repr(a)``), so it shows, and saves again, as it was, not quoted once more."""

    def __repr__(self) -> str:
        return str.__str__(self)


def graph(value: object) -> Graph:
    """The traced graph stored under ``otherData.unimem.graph`` (``Graph.to_dict``)."""
    g = Fields(At("otherData.unimem.graph"), obj(At("otherData.unimem"), "graph", value))
    arrays: dict[int, ArrayInfo] = {}
    raw_nodes = g.array("nodes")
    for i, raw in enumerate(g.array("arrays")):
        a = Fields(At(f"otherData.unimem.graph.arrays[{i}]"), raw, what="the array")
        aid = a.integer("id")
        if aid in arrays:
            a.at.fail("id", aid, "an array id not used by an earlier array")
        producer = a.get("producer")
        arrays[aid] = ArrayInfo(
            aid, a.text("name"), a.integers("shape"), a.text("dtype"), a.integer("nbytes"),
            a.text("role"),
            None if producer is None else a.integer("producer", 0, len(raw_nodes) - 1))
    nodes = []
    for i, raw in enumerate(raw_nodes):
        n = Fields(At(f"otherData.unimem.graph.nodes[{i}]"), raw, what="the node")
        stream = n.array("stream")
        if len(stream) != 2:
            n.at.fail("stream", stream, "[device, stream index]")
        for key in ("inputs", "outputs"):
            for j, aid in enumerate(n.integers(key)):
                if aid not in arrays:
                    n.at.fail(f"{key}[{j}]", aid, "the id of an array in graph.arrays")
        nodes.append(Node(
            n.integer("index", i, i), n.text("name"),
            StreamId(text(n.at, "stream[0]", stream[0]), integer(n.at, "stream[1]", stream[1])),
            n.text("lane"), n.integers("inputs"), n.integers("outputs"),
            tuple(Shown(a) for a in n.texts("arguments")), n.flag("synthetic")))
    outputs = g.integers("outputs")
    for j, aid in enumerate(outputs):
        if aid not in arrays:
            g.at.fail(f"outputs[{j}]", aid, "the id of an array in graph.arrays")
    return Graph(g.text("title"), g.names("placement"), nodes, arrays, outputs,
                 g.text("mlx_version") if "mlx_version" in g.d else "",
                 list(g.texts("notes")) if "notes" in g.d else [])
