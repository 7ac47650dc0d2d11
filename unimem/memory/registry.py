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

The registry is also where the page probe runs for views: ``snapshot()`` reads
every entry and probes the arrays that are done, and returns plain data
(``unimem.model.memory``), so ``MemoryView`` formats what it is handed and never
takes an array's address itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator

import mlx.core as mx

from ..devices import platform
from ..model.memory import ALLOCATED, EVALUATED, FREED, LAZY, Entry, RegistrySnapshot, Residency
from ..model.recording import Op, Recording
from ..model.text import TextRepr, fmt_dtype
from .residency import residencies


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


class Registry(TextRepr):
    """Weakly referenced arrays with name, size, producing stream and state.

    ``add`` registers an array by name; ``observe`` registers the outputs of a
    recorded op (``um.watch`` calls it). ``limit`` bounds memory for long watches:
    past it, entries are dropped down to 90% of it, freed ones first, oldest first.
    """

    _html_class = "unimem-registry"

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

    def snapshot(self, recording: Recording | None = None, *, probe: bool | None = None,
                 last: int | None = None) -> RegistrySnapshot:
        """Every entry now, with the residency of the arrays it is safe to probe.

        ``probe`` (default: on, except on CUDA, where taking an array's address moves
        a GPU output into managed memory) runs the page probe, once for all, over the
        ``last`` most recent entries (default: all). Only arrays that are done are
        probed, so the probe never waits for one still in flight: an op output whose
        end the recording has not seen is skipped (taking its address would wait for
        it, from ``um.watch``'s thread, on an array the main thread is using); arrays
        tracked by hand have no producer and are probed.
        """
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)
                                 or last < 1):
            raise ValueError(f"last must be a positive int or None, got {last!r}")
        backend = platform().backend
        probe = backend != "cuda" if probe is None else bool(probe)
        entries = self.entries(recording)
        shown = entries[-last:] if last is not None else entries
        return RegistrySnapshot(tuple(entries), self._probe(shown) if probe else {}, probe,
                                backend, self.dropped, self.limit)

    def _probe(self, entries: list[Entry]) -> dict[str, Residency]:
        named = []
        for e in entries:
            if e.alive and (e.state == EVALUATED or (e.state == ALLOCATED and e.producer is None)):
                slot = self._slots.get(e.name)
                arr = slot.ref() if slot is not None else None
                if arr is not None:
                    named.append((e.name, arr))
        return {r.name: r for r in residencies(named)}  # one kernel call for all

    # -- views -----------------------------------------------------------------
    def table(self, recording: Recording | None = None) -> list[list[str]]:
        """Header plus one row of text per entry (no addresses, no times)."""
        return self.snapshot(recording, probe=False).table()

    def lines(self, recording: Recording | None = None) -> list[str]:
        return self.snapshot(recording, probe=False).lines()



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
