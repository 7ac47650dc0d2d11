"""CUPTI's activity records as plain data: kernels, copies, syncs, events, migrations.

cupti-python hands over activity records as objects of its own; ``cuda_kernels``
keeps only the fields listed in :data:`FIELDS`, as dicts (also how tests and stored
runs hold them), and :func:`add_record` files each into a :class:`KernelCapture` of
frozen records with the codes turned into words. Nothing here calls CUPTI or MLX, so
it reads records captured on a GPU anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .attribution import NodeEvent

# CUPTI's CUpti_ActivityMemcpyKind and CUpti_ActivityMemoryKind, as words
# (https://docs.nvidia.com/cupti/api/group__CUPTI__ACTIVITY__API.html)
COPY_KINDS = {0: "unknown", 1: "host to device", 2: "device to host", 3: "host to array",
              4: "array to host", 5: "array to array", 6: "array to device",
              7: "device to array", 8: "device to device", 9: "host to host",
              10: "peer to peer"}
MEMORY_KINDS = {0: "unknown", 1: "pageable", 2: "pinned", 3: "device", 4: "array",
                5: "managed", 6: "device static", 7: "managed static"}
# CUpti_ActivitySynchronizationType: what a host call waited for, or set up
SYNC_KINDS = {0: "unknown", 1: "event synchronize", 2: "stream wait event",
              3: "stream synchronize", 4: "context synchronize"}
# CUpti_ActivityUnifiedMemoryCounterKind values this module configures
UM_HOST_TO_DEVICE, UM_DEVICE_TO_HOST, UM_CPU_FAULT, UM_GPU_FAULT = 1, 2, 3, 4
MIGRATION_DIRECTIONS = {UM_HOST_TO_DEVICE: "host to device", UM_DEVICE_TO_HOST: "device to host"}


@dataclass(frozen=True, slots=True)
class KernelRecord:
    """One kernel run, times in CUPTI's clock (ns)."""

    start: int
    end: int
    name: str  # as compiled (mangled C++ for MLX's own kernels)
    correlation_id: int  # the launch's: for a graph, the whole graph launch
    stream_id: int
    graph_node_id: int  # executable graph id << 32 | node index; 0 outside graphs


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """One memcpy or memset run, times in CUPTI's clock (ns)."""

    kind: str  # "memcpy" or "memset"
    start: int
    end: int
    nbytes: int
    direction: str  # "device to device", ..., or "set" for a memset
    source: str  # memory kinds, for a memcpy: "device", "managed", "pinned", ...
    destination: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """A host call that waited for the GPU, or made one stream wait for another
    (``cudaStreamWaitEvent``); times in CUPTI's clock (ns), the call's own duration."""

    kind: str  # a SYNC_KINDS word
    start: int
    end: int
    stream_id: int  # the stream that waited (stream waits and synchronizes)
    event_id: int  # the event waited for, where there is one; else -1
    sync_id: int  # joins a stream wait to the CUDA_EVENT record of the same event
    correlation_id: int = -1  # the call's place in launch order; -1 where not recorded


@dataclass(frozen=True, slots=True)
class EventRecord:
    """``cudaEventRecord``: an event placed on a stream, to be waited for elsewhere."""

    stream_id: int
    event_id: int
    sync_id: int
    correlation_id: int


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """Unified (managed) memory the driver moved on a page fault, timed on the device."""

    start: int
    end: int
    nbytes: int
    direction: str  # "host to device" or "device to host"
    address: int


@dataclass
class PageFaults:
    """Unified-memory page faults in a run: CUPTI reports each CPU fault as its own
    record, and GPU faults in groups (a record per group, its value the faults in it)."""

    cpu: int = 0
    gpu: int = 0
    gpu_groups: int = 0


@dataclass
class KernelCapture:
    """What one traced run gave: records, graph-node events, and the clock mapping."""

    kernels: list[KernelRecord] = field(default_factory=list)
    copies: list[CopyRecord] = field(default_factory=list)
    syncs: list[SyncRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    migrations: list[MigrationRecord] = field(default_factory=list)
    faults: PageFaults = field(default_factory=PageFaults)
    migrations_why_not: str = ""  # why unified-memory counters were not recorded
    node_events: list[NodeEvent] = field(default_factory=list)
    node_events_why_not: str = ""  # why no node events were taken ("" when they were)
    offset_ns: int = 0  # perf_counter_ns() - CUPTI timestamp
    error_ns: int = 0
    dropped: int = 0

    def to_perf_counter(self, t_ns: int) -> float:
        """A CUPTI timestamp as a ``time.perf_counter()`` value (seconds)."""
        return (t_ns + self.offset_ns) / 1e9


Record = KernelRecord | CopyRecord | SyncRecord | EventRecord | MigrationRecord


def record_of(fields: dict[str, Any]) -> Record | None:
    """A plain record from one CUPTI activity record's fields (live or stored in a file);
    None for what is not drawn (page faults are counted by :func:`add_record`)."""
    kind = fields.get("kind")
    if kind == "kernel":
        return KernelRecord(int(fields["start"]), int(fields["end"]), str(fields["name"]),
                            int(fields["correlation_id"]), int(fields["stream_id"]),
                            int(fields.get("graph_node_id", 0)))
    if kind in ("memcpy", "memset"):
        memcpy = kind == "memcpy"
        return CopyRecord(
            kind, int(fields["start"]), int(fields["end"]), int(fields["bytes"]),
            COPY_KINDS.get(int(fields.get("copy_kind", 0)), "unknown") if memcpy else "set",
            MEMORY_KINDS.get(int(fields.get("src_kind", 0)), "unknown") if memcpy else "",
            MEMORY_KINDS.get(int(fields.get("dst_kind", fields.get("memory_kind", 0))),
                             "unknown"),
            int(fields.get("stream_id", 0)))
    if kind == "sync":
        return SyncRecord(SYNC_KINDS.get(int(fields.get("type", 0)), "unknown"),
                          int(fields["start"]), int(fields["end"]),
                          _signed32(fields.get("stream_id", -1)),
                          _signed32(fields.get("cuda_event_id", -1)),
                          _signed32(fields.get("cuda_event_sync_id", -1)),
                          int(fields.get("correlation_id", -1)))
    if kind == "cuda_event":
        return EventRecord(int(fields["stream_id"]), int(fields["event_id"]),
                           _signed32(fields.get("cuda_event_sync_id", -1)),
                           int(fields.get("correlation_id", 0)))
    if kind == "um" and int(fields.get("counter_kind", 0)) in MIGRATION_DIRECTIONS:
        return MigrationRecord(int(fields["start"]), int(fields["end"]), int(fields["value"]),
                               MIGRATION_DIRECTIONS[int(fields["counter_kind"])],
                               int(fields.get("address", 0)))
    return None


def _signed32(value: Any) -> int:
    """CUPTI writes "none" as 0xFFFFFFFF in its 32-bit ids; -1 here."""
    v = int(value)
    return -1 if v == 0xFFFFFFFF else v


def add_record(capture: KernelCapture, fields: dict[str, Any]) -> None:
    """File one activity record's fields into ``capture`` (page faults are counted)."""
    if fields.get("kind") == "um" and int(fields.get("counter_kind", 0)) == UM_CPU_FAULT:
        capture.faults.cpu += 1
        return
    if fields.get("kind") == "um" and int(fields.get("counter_kind", 0)) == UM_GPU_FAULT:
        capture.faults.gpu += int(fields.get("value", 0))
        capture.faults.gpu_groups += 1
        return
    rec = record_of(fields)
    if isinstance(rec, KernelRecord):
        capture.kernels.append(rec)
    elif isinstance(rec, CopyRecord):
        capture.copies.append(rec)
    elif isinstance(rec, SyncRecord):
        capture.syncs.append(rec)
    elif isinstance(rec, EventRecord):
        capture.events.append(rec)
    elif isinstance(rec, MigrationRecord):
        capture.migrations.append(rec)


FIELDS = {"kernel": ("start", "end", "name", "correlation_id", "stream_id", "graph_node_id"),
           "memcpy": ("start", "end", "bytes", "copy_kind", "src_kind", "dst_kind",
                      "stream_id"),
           "memset": ("start", "end", "bytes", "memory_kind", "stream_id"),
           "sync": ("start", "end", "type", "stream_id", "cuda_event_id",
                    "cuda_event_sync_id", "correlation_id"),
           "cuda_event": ("stream_id", "event_id", "cuda_event_sync_id", "correlation_id"),
           "um": ("start", "end", "counter_kind", "value", "address")}
