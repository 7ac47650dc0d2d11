"""The arrays a user cares about, held by weak reference.

A registry never keeps memory alive and never blocks MLX's buffer donation
(``is_donatable`` needs the only reference): it holds a ``weakref`` to each
Python ``mx.array`` wrapper, so an array the user deletes is freed as usual and
its entry then reads ``alive=False``. Shape, dtype and size are copied at
registration, so a freed entry still says what it was.

State is what MLX exposes without side effects: ``mx.get_array_buffer_size``
raises for an array never scheduled ("lazy") and returns at once otherwise,
without waiting. Whether a scheduled array's kernel has finished cannot be read
from Python without waiting, so it is "allocated" (scheduled or evaluated) unless
the recording has a measured end for the op that made it ("evaluated").
"""

from __future__ import annotations

import html
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import mlx.core as mx

from ..model.recording import Op, Recording
from ..model.text import fmt_bytes, fmt_dtype, fmt_shape, html_table, text_table

LAZY, ALLOCATED, EVALUATED, FREED = "lazy", "allocated", "evaluated", "freed"
STATES = {
    LAZY: "not scheduled yet: no buffer",
    ALLOCATED: "scheduled or evaluated: MLX gave it a buffer (whether its kernel has "
               "finished cannot be read without waiting)",
    EVALUATED: "computed: the recording measured the end of the op that made it",
    FREED: "the last reference is gone and MLX freed or reused its buffer",
}


@dataclass(frozen=True)
class Entry:
    """A snapshot of one registered array (plain data: views read only these)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # logical size: size × itemsize
    buffer_bytes: int | None  # mx.get_array_buffer_size: whole buffer, views de-duplicated
    stream: str  # lane that produced it, "?" when not known
    state: str  # a key of STATES
    alive: bool
    producer: int | None  # recording op id


class _Slot:
    """What the registry keeps per array: a weak reference and static facts."""

    __slots__ = ("buffer", "dtype", "name", "nbytes", "producer", "ref", "shape", "stream")

    def __init__(self, name: str, arr: mx.array, stream: str, producer: int | None) -> None:
        self.name, self.ref = name, weakref.ref(arr)
        self.shape, self.nbytes = tuple(arr.shape), int(arr.nbytes)
        self.dtype = fmt_dtype(arr.dtype)
        self.stream, self.producer = stream, producer
        try:  # kept so a freed entry still tells its buffer size
            self.buffer: int | None = int(mx.get_array_buffer_size(arr))
        except ValueError:
            self.buffer = None


class Registry:
    """Weakly referenced arrays with name, size, producing stream and state.

    ``add`` registers an array by name; ``observe`` registers the outputs of a
    recorded op (``um.watch`` calls it). ``limit`` bounds memory for long watches:
    past it, entries are dropped down to 90% of it, freed ones first, oldest first.
    """

    def __init__(self, recording: Recording | None = None, *, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.recording, self.limit = recording, limit
        self._slots: dict[str, _Slot] = {}
        self.dropped = 0

    # -- registering -----------------------------------------------------------
    def add(self, name: str, arr: mx.array, *, stream: str = "?",
            producer: int | None = None) -> None:
        """Register ``arr`` under ``name`` (replacing an entry of that name)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        if not isinstance(arr, mx.array):
            raise TypeError(f"Registry.add({name!r}, ...) needs an mx.array, "
                            f"got {type(arr).__name__}")
        self._slots.pop(name, None)
        self._slots[name] = _Slot(name, arr, stream, producer)
        if len(self._slots) > self.limit:
            self._evict()

    def observe(self, op_id: int, outputs: Iterable[mx.array], *, stream: str | None = None,
                name: str | None = None) -> None:
        """Register what op ``op_id`` produced, named ``name`` or ``op<id>[.k]``.

        Without ``stream``, the lane is read from a recording when the entry is read
        (this registry's, or the one passed to :meth:`entries`).
        """
        outs = [o for o in outputs if isinstance(o, mx.array)]
        base = name or f"op{op_id}"
        for k, arr in enumerate(outs):
            self.add(base if len(outs) == 1 else f"{base}.{k}", arr, stream=stream or "?",
                     producer=op_id)

    def _evict(self) -> None:
        """Drop down to 90% of the limit (so a long watch pays this rarely): freed
        entries first, oldest first; then the oldest live ones."""
        excess = len(self._slots) - (self.limit - self.limit // 10)
        dead = [k for k, s in self._slots.items() if s.ref() is None][:excess]
        gone = set(dead)
        victims = dead + [k for k in self._slots if k not in gone][: excess - len(dead)]
        for k in victims:
            del self._slots[k]
        self.dropped += len(victims)

    # -- reading ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, name: object) -> bool:
        return name in self._slots

    def names(self) -> list[str]:
        return list(self._slots)

    def get(self, name: str) -> mx.array | None:
        """The live array registered as ``name``, or None once it is freed."""
        slot = self._slots.get(name)
        if slot is None:
            raise KeyError(f"no array named {name!r}; registered: {self.names()[:10]}")
        return slot.ref()

    def live(self) -> Iterator[tuple[str, mx.array]]:
        """(name, array) for every registered array still alive."""
        for slot in list(self._slots.values()):
            arr = slot.ref()
            if arr is not None:
                yield slot.name, arr

    def entry(self, name: str, recording: Recording | None = None) -> Entry:
        slot = self._slots.get(name)
        if slot is None:
            raise KeyError(f"no array named {name!r}; registered: {self.names()[:10]}")
        return self._snapshot(slot, recording or self.recording)

    def entries(self, recording: Recording | None = None) -> list[Entry]:
        """A snapshot of every entry, in registration order.

        ``recording`` (default: the registry's own) gives producing ops their lane
        and measured end: what ``um.watch`` registers carries only op ids.
        """
        rec = recording or self.recording
        return [self._snapshot(s, rec) for s in list(self._slots.values())]

    def __getitem__(self, name: str) -> Entry:
        return self.entry(name)

    def produced_by(self, op_ids: Iterable[int]) -> list[str]:
        """Names of entries made by any of ``op_ids``."""
        wanted = set(op_ids)
        return [s.name for s in self._slots.values() if s.producer in wanted]

    def _snapshot(self, slot: _Slot, rec: Recording | None) -> Entry:
        arr = slot.ref()
        if arr is None:
            state = FREED
        else:
            try:
                slot.buffer = int(mx.get_array_buffer_size(arr))
                state = EVALUATED if _op_done(rec, slot.producer) else ALLOCATED
            except ValueError:  # never scheduled: MLX raises, and waits for nothing
                state = LAZY
        stream = slot.stream if slot.stream != "?" else _lane_of(rec, slot.producer)
        return Entry(slot.name, slot.shape, slot.dtype, slot.nbytes, slot.buffer,
                     stream, state, arr is not None, slot.producer)

    # -- views -----------------------------------------------------------------
    def table(self, recording: Recording | None = None) -> list[list[str]]:
        """Header plus one row of text per entry (no addresses, no times)."""
        rows = [["name", "shape", "dtype", "bytes", "buffer", "stream", "state", "op"]]
        for e in self.entries(recording):
            rows.append([
                e.name, fmt_shape(e.shape), e.dtype, fmt_bytes(e.nbytes),
                fmt_bytes(e.buffer_bytes) if e.buffer_bytes is not None else "-",
                e.stream, e.state, "-" if e.producer is None else str(e.producer),
            ])
        return rows

    def lines(self, recording: Recording | None = None) -> list[str]:
        entries = self.entries(recording)
        alive = sum(e.alive for e in entries)
        head = f"Registry: {len(entries)} arrays ({alive} alive)"
        if self.dropped:
            head += f", {self.dropped} older entries dropped (limit {self.limit})"
        return [head, *text_table(self.table(recording))]

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return (f"<div><b>{html.escape(self.lines()[0])}</b>"
                f"{html_table(self.table(), 'unimem-registry')}</div>")


def _op(rec: Recording | None, op_id: int | None) -> Op | None:
    """The recording's op ``op_id``, or None when either is unknown."""
    if rec is None or op_id is None or not 0 <= op_id < len(rec.ops):
        return None
    return rec.ops[op_id]


def _op_done(rec: Recording | None, op_id: int | None) -> bool:
    op = _op(rec, op_id)
    return op is not None and op.end is not None


def _lane_of(rec: Recording | None, op_id: int | None) -> str:
    op = _op(rec, op_id)
    if rec is None or op is None or not 0 <= op.lane < len(rec.lanes):
        return "?"
    return rec.lanes[op.lane].name


def track(*arrays: mx.array, **named: mx.array) -> Registry:
    """Register arrays by weak reference: positional ones as ``a0, a1, …``, others by name.

    ``um.track(x=x, w=w)`` returns a Registry whose entries show each array's
    size and state and whether it is still alive; nothing is kept alive.
    """
    reg = Registry()
    for k, arr in enumerate(arrays):
        reg.add(f"a{k}", arr)
    for name, arr in named.items():
        reg.add(name, arr)
    return reg
