"""CUPTI records of real runs, stored: parsing, attribution to primitives, clock mapping.

``tests/data/cupti_h200.json.gz`` holds what unimem's GPU probe got on an NVIDIA H200
(MLX 0.32.4's CUDA build, cupti-python 13.4; machine and date in its ``recorded``
field): per run, the kernel/memcpy/memset activity records, the graph-node callbacks
with the primitive being encoded, and the walked graph's nodes.
``tests/data/cupti_sync_um_h200.json.gz`` adds the synchronisation, CUDA-event and
unified-memory records of two more runs; ``tests/data/record_cupti_sync_um.py`` records
it again on a CUDA machine.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from unimem.analysis.gpu import transfers
from unimem.capture import cuda_kernels
from unimem.capture.attribution import (
    Attributor,
    KernelLaunch,
    NodeEvent,
    attribute,
    short_kernel_name,
)
from unimem.capture.cupti_records import (
    CopyRecord,
    KernelCapture,
    KernelRecord,
    add_record,
    record_of,
)
from unimem.capture.gpu_kernels import COPIES_LANE, SYNC_LANE, sync_detail
from unimem.capture.native import ClockOffset, PendingGraph
from unimem.capture.native_run import NativeRun, fill_recording
from unimem.model.recording import Recording

with gzip.open(Path(__file__).parents[1] / "data" / "cupti_h200.json.gz") as _f:
    DATA = json.loads(_f.read())
RUNS = DATA["runs"]


def events_of(run: dict) -> list[NodeEvent]:
    return [NodeEvent(e["graph"] << 32 | e["local"], e["primitive"],
                      (e["orig_graph"] << 32 | e["orig_local"]) if e["event"] == "cloned" else 0,
                      e["event"] == "cloned")
            for e in run["node_events"]]


def kernels_of(run: dict) -> list[KernelRecord]:
    return [r for r in map(record_of, run["records"]) if isinstance(r, KernelRecord)]


def attributed(run: dict) -> tuple[Counter, object]:
    ks = kernels_of(run)
    a = attribute([KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id) for k in ks],
                  events_of(run), {n["id"]: n["stream"] for n in run["nodes"]})
    names = {n["id"]: n["name"] for n in run["nodes"]}
    pairs = Counter((names.get(p), short_kernel_name(k.name)) for p, k in zip(a.primitive, ks))
    return pairs, a


def test_the_stored_runs_say_where_and_when_they_were_recorded():
    rec = DATA["recorded"]
    assert "H200" in rec["machine"] and rec["mlx"].startswith("0.32.4") and rec["date"]


def test_every_kernel_of_all_gpu_fun_belongs_to_its_primitive():
    pairs, a = attributed(RUNS["fun_gpu"])
    assert a.attributed == 501 and a.launches == a.launches_matched == 5
    assert pairs[("Exp", "mlx::core::cu::unary_v<Exp>")] == 500
    ((matmul_kernel, n),) = [(k, n) for (p, k), n in pairs.items() if p == "Matmul"]
    assert n == 1 and matmul_kernel.startswith("cutlass::")  # cuBLAS's GEMM, in a child graph


def test_library_kernels_of_an_mlp_step_belong_to_the_matmul_that_launched_them():
    pairs, a = attributed(RUNS["mlp_step"])
    assert a.attributed == 42 and not a.unmatched_reasons
    by_primitive: dict[str, set[str]] = {}
    for p, k in pairs:
        by_primitive.setdefault(p, set()).add(k)
    assert any("splitKreduce" in k for k in by_primitive["AddMM"])  # split-K's second kernel
    assert by_primitive["CrossEntropy"] == {"mlx::core::cu::cross_entropy"}
    assert by_primitive["Maximum"] == {"mlx::core::cu::binary_vs<Maximum>"}  # the ReLUs


def test_a_transformer_block_is_attributed_in_full():
    pairs, a = attributed(RUNS["transformer"])
    assert a.attributed == 20
    assert pairs[("Softmax", "mlx::core::cu::softmax")] == 1
    assert pairs[("LayerNorm", "mlx::core::cu::layer_norm")] == 2


def test_a_kernel_launched_outside_graphs_stays_unattributed_and_named():
    pairs, a = attributed(RUNS["fun_split"])
    assert a.attributed == 1
    assert pairs[(None, "mlx::core::cu::event_signal_kernel")] == 1  # MLX's cross-device fence


def test_a_launch_whose_graph_was_not_seen_is_reported_not_guessed():
    run = dict(RUNS["fun_gpu"])
    first_graph = run["node_events"][0]["graph"]
    run["node_events"] = [e for e in run["node_events"] if e["graph"] != first_graph]
    _, a = attributed(run)
    assert a.attributed < 501 and a.unmatched_reasons
    assert a.launches_matched < a.launches


def test_without_node_events_nothing_is_attributed():
    ks = kernels_of(RUNS["fun_gpu"])
    a = attribute([KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id) for k in ks],
                  [], {})
    assert a.attributed == 0 and a.how.startswith("not attributed")


@pytest.mark.parametrize(("mangled", "short"), [
    ("_ZN3mlx4core2cu7unary_vINS1_3ExpEffjLi4EEEvPKT0_PT1_T2_", "mlx::core::cu::unary_v<Exp>"),
    ("_ZN3mlx4core2cu6copy_gIffiLi8EEEvPKT_PT0_", "mlx::core::cu::copy_g"),
    ("_ZN3mlx4core2cu17col_reduce_loopedIffNS1_6reduce3SumE",
     "mlx::core::cu::col_reduce_looped<reduce::Sum>"),
    ("sm80_xmma_gemm_f32f32_tf32f32_f32_nn_n", "sm80_xmma_gemm_f32f32_tf32f32_f32_nn_n"),
])
def test_short_kernel_names(mangled, short):
    assert short_kernel_name(mangled) == short


def test_copy_records_read_as_words():
    (copy,) = [r for r in map(record_of, RUNS["fun_split"]["records"])
               if isinstance(r, CopyRecord)] or [None]
    if copy is None:  # the stored split run's copy happened in the first (cold) run only
        copy = record_of({"kind": "memcpy", "start": 0, "end": 10, "bytes": 8192,
                          "copy_kind": 8, "src_kind": 3, "dst_kind": 5, "stream_id": 7})
    assert isinstance(copy, CopyRecord)
    assert (copy.direction, copy.source, copy.destination) == (
        "device to device", "device", "managed")
    assert record_of({"kind": "something else"}) is None


def _columns(run: dict) -> dict[str, list]:
    """The walked graph of a stored run, as the native probe's columns."""
    nodes = run["nodes"]
    n = len(nodes)
    return {"id": [x["id"] for x in nodes], "name": [x["name"] for x in nodes],
            "device": [x["device"] for x in nodes], "stream": [x["stream"] for x in nodes],
            "wrapped": [x["wrapped"] for x in nodes], "out_start": [0] * (n + 1),
            "in_start": [0] * (n + 1), "dim_start": [0], "dims": [], "dtype": [],
            "nbytes": [], "in_node": [], "in_output": []}


def _recording_of(run: dict) -> Recording:
    """A Recording filled the way um.profile fills one, from a stored run (every kind of
    CUPTI record filed)."""
    kernels = KernelCapture(node_events=events_of(run), offset_ns=run["clock"]["offset_ns"],
                            error_ns=run["clock"]["error_ns"])
    for fields in run["records"]:
        add_record(kernels, fields)
    captured = NativeRun(graphs=[PendingGraph.from_columns(_columns(run))],
                         clock=ClockOffset(0, 0), t0=run["t0_ns"] / 1e9, kernels=kernels)
    rec = Recording("stored", {}, "native", "measured natively")
    fill_recording(captured, rec)
    return rec


def test_a_stored_run_becomes_one_measured_bar_per_kernel_on_the_gpu_lane():
    run = RUNS["fun_gpu"]
    rec = _recording_of(run)
    (lane,) = rec.lanes  # one GPU stream (named as this machine's MLX names that index)
    assert lane.device == "gpu"
    gpu = rec.ops_on(lane.name)
    assert len(gpu) == 501 and all(op.start_measured and op.end >= op.start for op in gpu)
    assert rec.count("exp", lane=lane.name) == 500 and rec.count("matmul", lane=lane.name) == 1
    assert all(op.detail.startswith("kernel ") for op in gpu)
    # the clock mapping puts the kernels inside the run, measured on the host
    t1 = run["t1_ns"] / 1e9 - run["t0_ns"] / 1e9
    assert 0 <= min(op.start for op in gpu) and max(op.end for op in gpu) <= t1
    assert any("501 kernels measured on the device by CUPTI" in n and "501 attributed" in n
               for n in rec.notes)


def test_unattributed_kernels_and_copies_are_drawn_not_dropped():
    run = dict(RUNS["fun_split"])
    run["records"] = run["records"] + [
        {"kind": "memcpy", "start": run["records"][0]["start"], "end":
         run["records"][0]["start"] + 5000, "bytes": 8192, "copy_kind": 2, "src_kind": 3,
         "dst_kind": 5, "stream_id": 7}]
    rec = _recording_of(run)
    names = [op.name for op in rec.ops]
    assert "event_signal_kernel" in names  # drawn under its own name
    (copy,) = rec.ops_on(COPIES_LANE)
    assert copy.nbytes == 8192 and copy.detail == "memcpy device to host, device to managed"


@pytest.mark.parametrize("run", ["mlp_step", "transformer"])
def test_a_primitive_with_several_kernels_is_counted_once(run):
    """A split-K GEMM is two kernels of one AddMM: a bar each, one call counted."""
    rec = _recording_of(RUNS[run])
    primitives = Counter(n["name"] for n in RUNS[run]["nodes"] if n["device"] == "gpu")
    for name in ("Matmul", "AddMM"):
        assert rec.count(name) == primitives[name]
    further = [op for op in rec.ops if op.count == 0]
    assert further and all(" of this " in op.detail and op.name == op.calls[0][0]
                           for op in further)
    assert len(rec.ops) == len(kernels_of(RUNS[run]))  # still a bar per kernel


def test_gpu_work_of_a_run_with_no_gpu_primitive_is_listed_not_drawn():
    """MLX's CUDA build runs work of its own (event_signal_kernel) even when every
    primitive of the call ran on CPU streams: a note lists it; no GPU lane appears."""
    run = dict(RUNS["fun_split"])
    run["nodes"] = [dict(n, device="cpu") for n in run["nodes"]]
    rec = _recording_of(run)
    assert all(lane.device == "cpu" for lane in rec.lanes)
    assert not any(op.activity for op in rec.ops)
    (note,) = [n for n in rec.notes if n.startswith("GPU:")]
    assert "no primitive of the call ran on a GPU stream" in note
    assert "event_signal_kernel ×1" in note and "not drawn" in note


def test_cupti_is_absent_here_with_a_reason():
    if cuda_kernels.available():
        pytest.skip("this machine can trace CUDA kernels")
    assert cuda_kernels.why_unavailable()


def test_gpu_activity_of_a_stored_all_gpu_run_is_host_bound():
    """The H200 run of all-GPU `fun`: 501 tiny kernels spread over several CUDA graphs,
    with the host encoding between them: the GPU idled more than it worked."""
    import unimem as um

    act = um.gpu_activity(_recording_of(RUNS["fun_gpu"]))
    assert act.kernels == 501 and 0 < act.busy < act.span
    assert act.host_bound and act.idle_fraction > 0.5
    assert act.gaps and act.gaps[0][1] >= max(g for _, g in act.gaps)
    text = repr(act)
    assert text.startswith("GPU activity: 501 kernels, busy ") and "host-bound" in text


def test_a_traced_recording_says_how_busy_the_gpu_was():
    """The header of a timeline and a one-line summary: from the kernel bars."""
    import unimem as um
    from unimem.views.timeline_payload import pack

    rec = _recording_of(RUNS["fun_gpu"])
    act = um.gpu_activity(rec)
    (meta,) = pack([rec], ["fun"], 10_000).meta["recordings"]
    assert meta["gpu"] == {"kernels": 501, "busy": act.busy, "span": act.span,
                           "host_bound": act.host_bound}
    assert act.summary().startswith("GPU busy ") and "kernel span (idle " in act.summary()
    cpu = Recording("cpu", {}, "native", "measured natively")
    assert um.gpu_activity(cpu).summary() == ""
    assert pack([cpu], ["cpu"], 10).meta["recordings"][0]["gpu"] is None


def test_gpu_activity_counts_overlapping_kernels_once():
    import unimem as um
    from unimem.model.recording import Lane, Op

    rec = Recording("t", {}, "native", "m", lanes=[Lane(0, "gpu", "gpu", 0)])
    for i, (a, b) in enumerate([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]):
        rec.add_op(Op(i, 0, "k", a, a, b, start_measured=True, activity="kernel"))
    act = um.gpu_activity(rec)
    assert (act.busy, act.span, act.gaps) == (4.0, 6.0, ((3.0, 2.0),))
    assert not act.host_bound
    empty = um.gpu_activity(Recording("t", {}, "native", "m"))
    assert empty.kernels == 0 and "no kernels" in repr(empty)


@pytest.mark.parametrize("run", ["fun_gpu", "mlp_step", "transformer"])
def test_kernels_attributed_in_batches_as_a_live_watch_gets_them(run):
    """A live recording gets kernels in batches, a graph launch's kernels sometimes split
    between two: the result equals attributing them all at once."""
    ks = kernels_of(RUNS[run])
    launches = [KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id) for k in ks]
    stream_of = {n["id"]: n["stream"] for n in RUNS[run]["nodes"]}
    whole = attribute(launches, events_of(RUNS[run]), stream_of)
    live = Attributor()
    live.add_events(events_of(RUNS[run]), stream_of)
    third = max(1, len(launches) // 3)
    got: list[int] = []
    for i in range(0, len(launches), third):  # cuts fall inside launches
        got += live.add_kernels(launches[i:i + third])
    assert got == whole.primitive and live.result.attributed == whole.attributed
    assert live.result.launches == whole.launches


def test_a_live_recording_draws_each_kernel_under_its_primitive():
    """NativeOps in live mode: GPU primitives wait for their kernels, which arrive in
    two batches; the bars equal those of the recording made after the run."""
    from unimem.capture.native_ops import NativeOps

    run = RUNS["mlp_step"]
    after = _recording_of(run)
    nodes = run["nodes"]
    live = Recording("live", {}, "watch", "measured natively")
    ops = NativeOps(live, run["t0_ns"] / 1e9, ClockOffset(0, 0), live_gpu=True)
    ops.add(PendingGraph.from_columns(_columns(run)), 0.0)
    assert not live.ops  # nothing drawn before the kernels come in
    attributor = Attributor()
    attributor.add_events(events_of(run), {x["id"]: x["stream"] for x in nodes})
    ks = kernels_of(run)
    offset = run["clock"]["offset_ns"]
    for part in (ks[: len(ks) // 2], ks[len(ks) // 2:]):
        prims = attributor.add_kernels([KernelLaunch(k.correlation_id, k.stream_id,
                                                     k.graph_node_id) for k in part])
        ops.add_kernels(KernelCapture(kernels=part), prims, lambda t: (t + offset) / 1e9)
    ops.finish_live()
    assert sorted((op.name, op.count) for op in live.ops) == sorted(
        (op.name, op.count) for op in after.ops)
    assert all(op.activity == "kernel" and op.start_measured for op in live.ops)
    assert sorted(op.start for op in live.ops) == pytest.approx(
        sorted(op.start for op in after.ops))


# The CUPTI records of synchronisation calls, CUDA events and unified-memory counters,
# as an H200 gave them for MLX 0.32.4 (fields as cupti-python names them)
SYNC = {"kind": "sync", "start": 1_000, "end": 3_500, "type": 2, "stream_id": 15,
        "cuda_event_id": 1, "cuda_event_sync_id": 3}
HOST_SYNC = {"kind": "sync", "start": 4_000, "end": 9_000, "type": 3, "stream_id": 14,
             "cuda_event_id": 0xFFFFFFFF, "cuda_event_sync_id": 0xFFFFFFFF}
EVENT = {"kind": "cuda_event", "stream_id": 14, "event_id": 1, "cuda_event_sync_id": 3,
         "correlation_id": 777}
MIGRATION = {"kind": "um", "start": 2_000, "end": 6_000, "counter_kind": 2,
             "value": 1 << 20, "address": 0x7F00_0000_0000}
CPU_FAULT = {"kind": "um", "start": 2_500, "end": 0, "counter_kind": 3,
             "value": 0x7F12_3456_789A, "address": 0x7F00_0000_0000}
GPU_FAULT = {"kind": "um", "start": 7_000, "end": 7_300, "counter_kind": 4, "value": 7,
             "address": 0x7F00_0001_0000}


def test_sync_event_and_unified_memory_records_are_filed():
    cap = KernelCapture()
    for fields in (SYNC, HOST_SYNC, EVENT, MIGRATION, CPU_FAULT, CPU_FAULT, GPU_FAULT):
        add_record(cap, fields)
    wait, host = cap.syncs
    assert (wait.kind, wait.stream_id, wait.event_id, wait.sync_id) == (
        "stream wait event", 15, 1, 3)
    assert (host.kind, host.event_id, host.sync_id) == ("stream synchronize", -1, -1)
    (event,) = cap.events
    assert (event.stream_id, event.sync_id) == (14, 3)
    (moved,) = cap.migrations
    assert moved.direction == "device to host" and moved.nbytes == 1 << 20
    # a CPU fault record is one fault (its value is not a count); a GPU one is a group
    assert (cap.faults.cpu, cap.faults.gpu, cap.faults.gpu_groups) == (2, 7, 1)
    assert sync_detail(wait, cap.events, {14: "gpu"}).startswith(
        "cudaStreamWaitEvent: CUDA stream 15 waits on the GPU for event 1, recorded on "
        "CUDA stream 14 (lane 'gpu')")


def test_migrations_and_host_waits_are_drawn_summed_and_taxed():
    import unimem as um

    run = dict(RUNS["fun_gpu"])
    t = run["records"][0]["start"]
    run["records"] = run["records"] + [dict(r, start=t + r["start"], end=t + r["end"])
                                       for r in (MIGRATION, HOST_SYNC)]
    rec = _recording_of(run)
    (moved,) = rec.ops_on(COPIES_LANE)
    assert moved.activity == "migration" and moved.name == "migration device to host"
    (wait,) = rec.ops_on(SYNC_LANE)
    assert wait.activity == "sync" and wait.duration == pytest.approx(5e-6)
    act = um.gpu_activity(rec)
    assert act.migrated == (("device to host", 1, 1 << 20),)
    assert act.host_waits == 1 and act.host_wait_time == pytest.approx(5e-6)
    assert "migrated device to host on page faults: 1.0 MiB in 1 transfer" in repr(act)
    assert [(x.activity, x.route, x.nbytes) for x in transfers(rec)] == [
        ("migration", "migration device to host", 1 << 20)]
    tax = um.copy_tax(rec, backend="cuda")
    assert (tax.migrations, tax.migrated_bytes) == (1, 1 << 20)
    assert "migrated on page faults (CUPTI's unified-memory counters): 1.0 MiB" in repr(tax)


def test_an_executable_instantiated_from_a_graph_does_not_hide_that_graph():
    """The first run of a graph's shape: CUDA clones its nodes into the executable, and
    CUPTI reports the clones, outside any primitive (seen on an H200 in a watch's first
    eval: 40 kernels lost before this was handled). The graph still owns its kernels."""
    run = dict(RUNS["fun_gpu"])
    events = events_of(run)
    first = events[0].graph
    nodes = [e for e in events if e.graph == first]
    exec_graph = max(e.graph for e in events) + 1
    copies = [NodeEvent(exec_graph << 32 | e.index, 0, e.node, True) for e in nodes]
    at = events.index(nodes[-1]) + 1
    with_copies = events[:at] + copies + events[at:]
    ks = kernels_of(run)
    launches = [KernelLaunch(k.correlation_id, k.stream_id, k.graph_node_id) for k in ks]
    stream_of = {n["id"]: n["stream"] for n in run["nodes"]}
    assert attribute(launches, with_copies, stream_of).attributed == 501


with gzip.open(Path(__file__).parents[1] / "data" / "cupti_sync_um_h200.json.gz") as _f:
    SYNC_DATA = json.loads(_f.read())  # two runs with every record kind unimem asks for


def test_a_stored_hand_off_shows_its_copy_the_migrations_and_the_waits():
    """The H200's hand-off (GPU exp of 16 MiB, then a CPU sum): the memcpy into managed
    memory, then the pages migrating to the host as the CPU read them."""
    import unimem as um

    assert "H200" in SYNC_DATA["recorded"]["machine"]
    rec = _recording_of(SYNC_DATA["runs"]["handoff_cold"])
    lanes = {lane.name for lane in rec.lanes}
    assert {COPIES_LANE, SYNC_LANE} <= lanes
    act = um.gpu_activity(rec)
    moved = {d: b for d, _, b in act.migrated}
    assert moved["device to host"] >= 16 << 20  # all of y, to the CPU that read it
    assert act.copies == 1 and act.copy_bytes >= 16 << 20
    assert act.host_waits >= 1 and act.host_wait_time > 0
    (note,) = [n for n in rec.notes if n.startswith("GPU:")]
    assert "unified-memory migrations" in note and "page faults on managed memory" in note
    routes = [(t.activity, t.route) for t in um.transfers(rec)]
    assert routes[0] == ("migration", "migration device to host")


def test_a_stored_wait_between_two_gpu_streams_names_both():
    run = SYNC_DATA["runs"]["two_gpu_streams"]
    rec = _recording_of(run)
    waits = [op for op in rec.ops_on(SYNC_LANE) if op.name == "stream wait event"]
    assert waits and all(op.detail.startswith("cudaStreamWaitEvent: CUDA stream ")
                         for op in waits)
    # the wait whose event was recorded on a stream that ran a kernel names that lane
    gpu_lanes = {lane.name for lane in rec.lanes if lane.device == "gpu"} - {SYNC_LANE,
                                                                            COPIES_LANE}
    assert any(f"(lane {name!r})" in op.detail for op in waits for name in gpu_lanes)


def test_cuda_waits_are_flows_from_the_work_waited_for_to_what_waited():
    """The H200's two-stream run: Exp (CUDA stream 14) waited, on the GPU, for an event
    recorded on the GEMM's stream after the GEMM; then the host waited for an event
    recorded after Exp. Each wait is a "gpu wait" flow, also in the Chrome trace."""
    from unimem.model.chrome import from_chrome_trace, to_chrome_trace
    from unimem.model.graph import GPU_WAIT

    rec = _recording_of(SYNC_DATA["runs"]["two_gpu_streams"])
    waits = [f for f in rec.flows if f.kind == GPU_WAIT]
    pairs = {(rec.ops[f.src].detail.split(" ")[1].split("_")[0], rec.ops[f.dst].name)
             for f in waits}
    gemm_to_exp = next(f for f in waits if rec.ops[f.dst].name == "Exp")
    assert "cutlass" in rec.ops[gemm_to_exp.src].detail
    assert rec.ops[gemm_to_exp.src].end <= rec.ops[gemm_to_exp.dst].start  # it did wait
    assert ("mlx::core::cu::unary", "event synchronize") in pairs  # the host waited for Exp
    assert [f.dst for f in rec.flows] == sorted(f.dst for f in rec.flows)
    trace = to_chrome_trace(rec)
    assert sum(e["ph"] == "s" and e["name"] == GPU_WAIT for e in trace["traceEvents"]) == len(
        waits)
    assert from_chrome_trace(trace).flows == rec.flows


def test_a_stream_synchronize_is_a_flow_from_the_last_kernel_launched_before_it():
    run = dict(SYNC_DATA["runs"]["two_gpu_streams"])
    last = max((r for r in run["records"] if r["kind"] == "kernel" and r["stream_id"] == 16),
               key=lambda r: r["correlation_id"])
    run["records"] = [dict(r, correlation_id=last["correlation_id"] + 1)
                      if r["kind"] == "sync" and r["type"] == 3 else r for r in run["records"]]
    rec = _recording_of(run)
    (flow,) = [f for f in rec.flows if rec.ops[f.dst].name == "stream synchronize"]
    assert "event_signal_kernel" in rec.ops[flow.src].detail


def test_the_host_lane_accounts_for_the_run_from_its_first_line():
    """With the evaluating thread's phases, the timeline spans the run: its Python, the
    walk, MLX's eval, around the kernels they launched."""
    import unimem as um
    from unimem.capture.native_ops import HOST_LANE, HostPhase

    run = RUNS["fun_gpu"]
    t0, t1 = run["t0_ns"] / 1e9, run["t1_ns"] / 1e9
    walk, launch = t0 + 0.3 * (t1 - t0), t0 + 0.35 * (t1 - t0)
    kernels = KernelCapture(node_events=events_of(run), offset_ns=run["clock"]["offset_ns"],
                            error_ns=run["clock"]["error_ns"])
    for fields in run["records"]:
        add_record(kernels, fields)
    phases = [HostPhase("python", t0, walk), HostPhase("walk", walk, launch),
              HostPhase("eval", launch, t1)]
    captured = NativeRun(graphs=[PendingGraph.from_columns(_columns(run))],
                         clock=ClockOffset(0, 0), t0=t0, wall=t1 - t0, kernels=kernels,
                         host=phases)
    rec = Recording("stored", {}, "native", "measured natively")
    fill_recording(captured, rec)
    host = rec.ops_on(HOST_LANE)
    assert [op.name for op in host] == ["your code", "unimem walk", "mx.eval"]
    assert all(op.activity == "host" and op.start_measured for op in host)
    assert rec.count() == 501  # primitives counted; the host's phases are not MLX calls
    assert rec.makespan == pytest.approx(t1 - t0)
    kernel_ops = [op for op in rec.ops if op.activity == "kernel"]
    assert min(op.start for op in kernel_ops) >= host[0].end  # launched after the walk
    assert f"{HOST_LANE}: your code, unimem walk, mx.eval" in repr(rec)
    act = um.gpu_activity(rec)
    assert [name for name, _ in act.host] == ["your code", "unimem walk", "mx.eval"]
    assert sum(t for _, t in act.host) == pytest.approx(t1 - t0)
    assert "  the host: your code " in repr(act)
    path = um.critical_path(rec)  # ops and the waits between them, not the host's phases
    assert path.ops and not any(rec.ops[i].activity == "host" for i in path.ops)


def test_a_live_recorder_takes_cupti_batches_and_notes_the_attribution(monkeypatch):
    """NativeRecorder's GPU path on a machine without one: CUPTI replaced by the stored
    MLP run, handed over in two polls and a stop, as a watch gets it."""
    from unimem.capture import native_live
    from unimem.capture.native_live import NativeRecorder

    run = RUNS["mlp_step"]
    ks = kernels_of(run)
    pieces = [KernelCapture(kernels=ks[:10], node_events=events_of(run)),
              KernelCapture(kernels=ks[10:30]), KernelCapture(kernels=ks[30:])]
    calls: list[str] = []

    class StoredTrace:  # what cuda_kernels.KernelTrace gives, from the stored run
        clock_at_start = (run["clock"]["offset_ns"], run["clock"]["error_ns"])

        def start(self) -> None:
            calls.append("start")

        def poll(self) -> KernelCapture:
            calls.append("poll")
            return pieces.pop(0) if len(pieces) > 1 else KernelCapture()

        def stop(self) -> KernelCapture:
            calls.append("stop")
            return pieces.pop(0)

    monkeypatch.setattr(native_live.cuda_kernels, "KernelTrace", StoredTrace)
    rec = Recording("live", {}, "watch", "measured natively")
    recorder = NativeRecorder(rec, gpu=True)
    assert calls == []  # making a recorder starts nothing
    recorder.begin()
    recorder._ops.t0 = run["t0_ns"] / 1e9  # the stored run's clock, not this machine's
    # what at_eval_point does with a walked graph (here the stored run's)
    recorder._attributor.add_events([], {n["id"]: n["stream"] for n in run["nodes"]})
    recorder._ops.add(PendingGraph.from_columns(_columns(run)), 0.0)
    recorder.flush()
    after_first = sum(op.activity == "kernel" for op in rec.ops)
    assert 0 < after_first <= 10  # drawn before the run ends
    recorder.flush()
    recorder.close(timeout=0.1)
    assert calls == ["start", "poll", "poll", "poll", "stop"]
    assert sum(op.activity == "kernel" for op in rec.ops) == len(ks)
    (note,) = [n for n in rec.notes if n.startswith("GPU: ")]
    assert note.startswith(f"GPU: {len(ks)} kernels measured on the device by CUPTI, "
                           f"{len(ks)} attributed")
    assert any(n.startswith("GPU primitives that ran no kernel") for n in rec.notes)
