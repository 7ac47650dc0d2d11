"""The timeline widget's payload: what Python sends is what the recording holds."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from factory import make_recording

import unimem as um
from unimem import Timeline
from unimem.model.recording import Flow, Lane, MemorySample, Op, Recording, Timing
from unimem.views.assets import asset, esm


def columns(tl: Timeline) -> dict[str, np.ndarray]:
    """Decode the payload exactly as widgets/timeline.js does."""
    buf = bytes(tl._payload)
    return {name: np.frombuffer(buf, dtype=dt, count=n, offset=off)
            for name, (off, n, dt) in tl._meta["arrays"].items()}


def two_lanes() -> Recording:
    """cpu: op0 -> op1; gpu: op2 (waits for op0, a device switch), op3 still running."""
    f32 = {"shapes": ((4, 4),), "dtypes": ("float32",), "nbytes": 64}
    return make_recording([
        {"lane": 0, "calls": "Matmul", "start": 0.0, "end": 1e-3, **f32},
        {"lane": 0, "calls": "Exp", "submit": 0.1e-3, "start": 1e-3, "end": 2e-3,
         "inputs": (0,), **f32},
        {"lane": 1, "calls": "Add", "submit": 0.2e-3, "start": 1e-3, "end": 3e-3,
         "inputs": (0,), "nbytes": 128, "start_measured": True},
        {"lane": 1, "calls": "Exp", "submit": 3.5e-3, "nbytes": 128},
    ], lanes=("cpu", "gpu"), title="demo", placement={"d1": "cpu", "d2": "gpu"}, mode="op",
        method="measured: test", memory=[(2e-3, 200, 0, 300), (1e-3, 100, 50, 100)])


def chain(n: int) -> Recording:
    """n ops alternating between two CPU streams, each waiting for the one before."""
    return make_recording(
        ({"lane": i % 2, "calls": "Exp", "submit": i * 1e-3, "start": i * 1e-3,
          "end": (i + 1) * 1e-3, "inputs": (i - 1,) if i else ()} for i in range(n)),
        title="chain", mode="op", method="measured: test", nbytes=16,
        memory=[((i + 1) * 1e-3, 16 * i, 0, 16 * i) for i in range(n)])


def test_lanes_bars_flows_and_strings():
    tl = Timeline(two_lanes())
    meta, cols = tl._meta, columns(tl)
    assert [(x["name"], x["device"], x["label"]) for x in meta["lanes"]] == [
        ("cpu", "cpu", "cpu · Stream(cpu, 0)"), ("gpu", "gpu", "gpu · Stream(gpu, 1)")]
    assert list(cols["row"]) == [0, 0, 1, 1]
    assert [meta["strings"][i] for i in cols["name"]] == ["Matmul", "Exp", "Add", "Exp"]
    assert meta["strings"][cols["info"][0]] == "(4, 4) float32"
    assert list(cols["id"]) == [0, 1, 2, 3]
    assert list(cols["nbytes"]) == [64, 64, 128, 128]
    assert (list(cols["flow_src"]), list(cols["flow_dst"])) == ([0], [2])
    assert meta["flow_kinds"] == ["device switch"]  # only the kinds the payload uses
    assert list(cols["flow_kind"]) == [0]
    assert meta["n_ops"] == 4 and meta["n_flows"] == 1


def test_in_flight_op_has_nan_end_and_flag():
    tl = Timeline(two_lanes())
    cols = columns(tl)
    assert math.isnan(cols["end"][3]) and not np.isnan(cols["end"][:3]).any()
    assert cols["start"][3] == pytest.approx(3.5e-3)  # no derived start yet: its hand-off
    assert list(cols["flags"]) == [0, 0, 1, 2]  # bit 1: start measured, bit 2: in flight
    assert tl._meta["recordings"][0]["in_flight"] == 1
    assert tl._meta["now"] == pytest.approx(3.5e-3)  # open bars are drawn up to here
    assert "1 in flight" in repr(tl)


def test_memory_counters_sorted_on_the_recording_clock():
    cols = columns(Timeline(two_lanes()))
    assert list(cols["mem_t"]) == [1e-3, 2e-3]
    assert list(cols["mem_active"]) == [100, 200]
    assert list(cols["mem_cache"]) == [50, 0]
    assert list(cols["mem_peak"]) == [100, 300]


def test_measured_and_derived_are_counted_and_labelled():
    tl = Timeline(two_lanes())
    rec = tl._meta["recordings"][0]
    assert (rec["measured_starts"], rec["ops"][1], rec["in_flight"]) == (1, 4, 1)
    assert rec["method"] == "measured: test" and rec["timing"] is None
    assert rec["placement"] == {"d1": "cpu", "d2": "gpu"}
    assert repr(tl) == ("Timeline: 2 lanes, 4 bars, 1 cross-stream flow; measured ends, "
                        "derived and measured starts; 1 in flight; "
                        "memory lane (active, cache, peak)")


def test_timing_travels_as_seconds_for_the_widget_to_compare():
    rec = chain(4)
    rec.timing, rec.wall = Timing((2e-3, 2e-3, 2e-3), 1), 5e-3
    timing = Timeline(rec)._meta["recordings"][0]["timing"]
    assert timing == {"plain_median": 2e-3, "wall": 5e-3, "makespan": pytest.approx(4e-3)}


def test_window_keeps_the_most_recent_ops_and_flows_inside_it():
    rec = chain(50)
    tl = Timeline(rec, window=10)
    cols = columns(tl)
    assert list(cols["id"]) == list(range(40, 50))
    assert len(rec.ops) == 50  # older ops stay in the recording
    assert tl._meta["recordings"][0]["ops_total"] == 50
    # flows 39->40 .. 48->49: the one from op 39 (outside the window) is dropped
    assert list(cols["flow_src"]) == list(range(9))
    assert list(cols["flow_dst"]) == list(range(1, 10))
    assert cols["mem_t"].min() >= 40e-3  # memory from the window's first start on
    assert "showing last 10 of 50 ops" in repr(tl)


def test_refresh_sends_what_was_appended():
    rec = chain(5)
    tl = Timeline(rec, window=3)
    rec.ops.append(Op(5, 0, "Log", 5e-3, None, None, nbytes=16))
    assert tl._meta["n_ops"] == 3 and 5 not in columns(tl)["id"]
    tl.refresh()
    assert list(columns(tl)["id"]) == [3, 4, 5]
    assert tl._meta["recordings"][0]["in_flight"] == 1


def test_highlight_maps_op_ids_to_bars_and_follows_the_window():
    rec = chain(20)
    tl = Timeline(rec, window=5)
    tl.highlight([14, 15, 16])  # 14 is outside the window: skipped, not an error
    assert tl._highlight == [0, 1]
    rec.ops.append(Op(20, 0, "Exp", 20e-3, 20e-3, 21e-3))
    tl.refresh()
    assert tl._highlight == [0]  # 15 left the window, 16 is now bar 0
    tl.highlight(SimpleNamespace(op_ids=[18, 19]))  # e.g. a critical path object
    assert tl._highlight == [2, 3]
    assert "2 ops highlighted" in repr(tl)
    tl.highlight([])
    assert tl._highlight == []


def test_highlight_rejects_bad_input():
    tl = Timeline(chain(3))
    with pytest.raises(ValueError, match="no op 7"):
        tl.highlight([7])
    with pytest.raises(ValueError, match="recording must be"):
        tl.highlight([0], recording=1)
    with pytest.raises(TypeError, match="op ids"):
        tl.highlight("0 1")
    with pytest.raises(TypeError, match="op ids"):
        tl.highlight([0.5])


def test_stacked_recordings_share_one_payload():
    tl = Timeline(two_lanes(), chain(3), labels=["split", "chain"])
    meta, cols = tl._meta, columns(tl)
    assert [x["recording"] for x in meta["lanes"]] == [0, 0, 1, 1]
    assert [r["label"] for r in meta["recordings"]] == ["split", "chain"]
    assert [r["ops"] for r in meta["recordings"]] == [[0, 4], [4, 3]]
    assert list(cols["row"][4:]) == [2, 3, 2]  # the second recording's lanes come after
    assert list(cols["flow_src"]) == [0, 4, 5] and list(cols["flow_dst"]) == [2, 5, 6]
    tl.highlight([1, 2], recording=1)
    assert tl._highlight == [5, 6]
    assert repr(tl).startswith("Timeline of 2 recordings (split | chain): 4 lanes, 7 bars, "
                               "3 cross-stream flows;")


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="at least one Recording"):
        Timeline()
    with pytest.raises(TypeError, match="draws Recordings"):
        Timeline({"ops": []})
    with pytest.raises(ValueError, match="one label per recording"):
        Timeline(chain(2), labels=["a", "b"])
    with pytest.raises(ValueError, match="window must be a positive int"):
        Timeline(chain(2), window=0)


def test_widget_wiring_and_text():
    tl = Timeline(chain(3))
    assert tl.hovered == -1 and tl.trait_metadata("hovered", "sync")
    data = tl._repr_mimebundle_()
    bundle = data[0] if isinstance(data, tuple) else data
    assert bundle["text/plain"] == repr(tl)
    assert "0x" not in repr(tl)


def test_widget_modules_are_shared_js_then_their_own_files():
    """No bundler: each module is widgets/shared.js (declarations only) plus the widget's
    files, joined by esm(), with one ``export default`` (anywidget's entry point)."""
    shared = asset("shared.js").read_text()
    assert not re.search(r"^\s*(import|export)\b", shared, re.MULTILINE)
    for module, files in ((Timeline(chain(3))._esm, ("timeline.js", "timeline_draw.js", "timeline_labels.js")),
                          (um.MemoryView()._esm, ("memory.js",))):
        assert module == esm(*files)
        assert len(re.findall(r"^export default\b", module, re.MULTILINE)) == 1
        assert module.index(shared) < min(module.index(asset(f).read_text()) for f in files)
    with pytest.raises(FileNotFoundError, match="nope.js"):
        asset("nope.js")


def test_profile_recording_and_its_chrome_round_trip(fun, ab):
    a, b = ab
    rec = um.profile(fun, a, b, d1="cpu", d2="cpu:1", repeat=1, warmup=0, trace=False,
                     mode="op")
    tl = Timeline(rec)
    assert [x["name"] for x in tl._meta["lanes"]] == [lane.name for lane in rec.lanes]
    assert tl._meta["n_ops"] == len(rec.ops) == 501
    assert not np.isnan(columns(tl)["end"]).any()
    meta = tl._meta["recordings"][0]
    assert meta["measured_starts"] == 0 and meta["ops"][1] == 501
    assert meta["timing"]["plain_median"] == rec.timing.median
    assert (meta["timing"]["wall"], meta["timing"]["makespan"]) == (rec.wall, rec.makespan)
    loaded = Timeline(Recording.load(rec.to_chrome_trace()))
    assert columns(loaded)["end"] == pytest.approx(columns(tl)["end"], abs=1e-6)
    assert loaded._meta["n_flows"] == tl._meta["n_flows"]


def test_comparison_timeline_stacks_placements(fun, ab):
    a, b = ab
    cmp = um.compare(fun, a, b, placements={"one stream": {"d1": "cpu", "d2": "cpu"},
                                            "two streams": {"d1": "cpu", "d2": "cpu:1"}},
                     repeat=1, warmup=0, mode="op")
    tl = cmp.timeline()
    assert [r["label"] for r in tl._meta["recordings"]] == ["one stream", "two streams"]
    assert [x["recording"] for x in tl._meta["lanes"]] == [0, 1, 1]
    assert tl._meta["n_ops"] == 1002


def test_an_empty_recording_packs_and_says_so():
    tl = Timeline(Recording("watch", {}, "watch", "measured: test"))
    assert tl._meta["n_ops"] == 0 and tl._meta["lanes"] == []
    assert repr(tl) == "Timeline: 0 lanes, 0 bars, 0 cross-stream flows"


def test_refresh_while_a_recorder_appends():
    """A live watch appends lanes, ops, flows and memory from other threads meanwhile."""
    import threading

    rec = Recording("live", {}, "watch", "measured: test")
    tl = Timeline(rec, window=100)
    done = threading.Event()

    def record() -> None:
        for i in range(3000):
            if i % 500 == 0:
                rec.lanes.append(Lane(len(rec.lanes), f"cpu:{len(rec.lanes)}", "cpu", i))
            rec.ops.append(Op(i, len(rec.lanes) - 1, "Exp", i * 1e-6, i * 1e-6,
                              None if i % 7 else (i + 1) * 1e-6, inputs=(i - 1,) if i else ()))
            if i:
                rec.flows.append(Flow(i - 1, i, "cross stream", 0))
            rec.memory.append(MemorySample(i * 1e-6, i, 0, i))
        done.set()

    thread = threading.Thread(target=record)
    thread.start()
    while not done.is_set():
        tl.refresh()
        assert tl._meta["n_ops"] <= 100
    thread.join()
    tl.refresh()
    assert list(columns(tl)["id"]) == list(range(2900, 3000))
    assert tl._meta["recordings"][0]["ops_total"] == 3000


def test_refresh_reuses_settled_rows_but_follows_changes():
    rec = chain(6)
    rec.ops[5].end, rec.ops[5].start = None, None  # still running
    tl = Timeline(rec, window=4)
    assert math.isnan(columns(tl)["end"][3])
    rec.ops[5].start, rec.ops[5].end = 5.5e-3, 7e-3  # it finished; its start was derived
    rec.ops[4].start = 4.2e-3  # a start derived again (e.g. when the recorder closes)
    tl.refresh()
    cols = columns(tl)
    assert list(cols["end"][2:]) == [5e-3, 7e-3] and list(cols["start"][2:]) == [4.2e-3, 5.5e-3]
    assert list(cols["flags"]) == [0, 0, 0, 0]


def test_only_the_strings_the_window_uses_are_sent():
    rec = chain(10)
    for i, op in enumerate(rec.ops):
        op.calls = ((f"Op{i}", 1),)
    tl = Timeline(rec, window=3)
    assert sorted(tl._meta["strings"]) == ["", "Op7", "Op8", "Op9"]  # "" = no shape info
    cols = columns(tl)
    assert [tl._meta["strings"][i] for i in cols["name"]] == ["Op7", "Op8", "Op9"]
    for i in range(10, 13):
        rec.ops.append(Op(i, 0, f"Op{i}", i * 1e-3, i * 1e-3, (i + 1) * 1e-3))
    tl.refresh()
    assert sorted(tl._meta["strings"]) == ["", "Op10", "Op11", "Op12"]


def test_highlight_takes_a_critical_path():
    rec = chain(8)
    path = um.critical_path(rec)
    tl = Timeline(rec, window=5)
    tl.highlight(path)  # its .ops, in time order; those in the window become bars
    assert tl._highlight == [i - 3 for i in path.ops if i >= 3]
    assert tl._highlight


def _chain(n: int) -> Recording:
    return make_recording(
        ({"lane": i % 2, "calls": "Exp", "submit": i * 1e-6, "start": i * 1e-6,
          "end": (i + 1) * 1e-6, "inputs": (i - 1,) if i else ()} for i in range(n)),
        title="chain", mode="native", method="measured: test", nbytes=16)


def test_widget_state_is_bounded_and_says_what_it_leaves_out():
    """20,000 ops: the default window sends the last 5,000; the state a saved notebook
    keeps stays under 300 KiB, and the header and repr say how many are not shown."""
    import json

    from unimem.views.timeline import WINDOW

    tl = Timeline(_chain(20_000))
    (meta,) = tl._meta["recordings"]
    assert WINDOW == 5_000 and meta["ops_total"] == 20_000 and meta["ops"][1] == WINDOW
    assert len(tl._payload) + len(json.dumps(tl._meta)) < 300 * 1024
    assert f"showing last {WINDOW} of 20000 ops" in repr(tl)
    # what is not shown stays in the recording
    assert len(tl.recordings[0].ops) == 20_000


@pytest.mark.slow  # about 10 s on a 2-core CI machine
def test_a_100k_op_recording_exports_loads_and_renders(tmp_path):
    rec = _chain(100_000)
    path = tmp_path / "big.json"
    rec.to_chrome_trace(path)
    back = um.Recording.load(path)
    assert len(back.ops) == 100_000 and len(back.flows) == len(rec.flows)
    assert [t for o in back.ops[-3:] for t in (o.start, o.end)] == pytest.approx(
        [t for o in rec.ops[-3:] for t in (o.start, o.end)], abs=1e-9)
    tl = Timeline(back)
    assert tl._meta["recordings"][0]["ops_total"] == 100_000
