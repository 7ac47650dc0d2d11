"""The widgets' JavaScript functions, one by one, in headless Chromium (no Jupyter).

decode() on a small payload whose every number is known; the formatters against
Python's own (``unimem.model.text``) on golden values; the shared palette and flow
kinds against the names Python uses. Each test runs the module text anywidget is
sent (``Timeline._esm``: widgets/shared.js, timeline.js, timeline_draw.js, timeline_labels.js).
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _static_harness import browser_page, expose

from unimem import Timeline
from unimem.model.graph import DEVICE_SWITCH, FLOW_KINDS
from unimem.model.recording import Flow, Lane, MemorySample, Op, Recording
from unimem.model.text import fmt_bytes, fmt_time
from unimem.views.memory import CLASSES, COUNTERS

pytestmark = pytest.mark.browser
NAMES = ("decode", "fmtBytes", "fmtTime", "PALETTE", "FLOWS", "COUNTERS")
DECODED_JS = """([meta, payload]) => {
  const d = window.unimem.decode(meta, new DataView(Uint8Array.from(payload).buffer));
  const plain = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Array.from(v)]));
  return { n: d.n, memTop: d.memTop, full: d.full, end: Array.from(d.end), cols: plain(d.cols),
           types: Object.fromEntries(Object.entries(d.cols).map(([k, v]) => [k, v.constructor.name])),
           byRow: d.byRow.map((r) => Array.from(r)), maxDur: Array.from(d.maxDur) };
}"""


def known() -> Recording:
    """Two lanes; on the gpu lane op 2 starts before op 1; op 3 is still running."""
    rec = Recording("known", {"d1": "cpu", "d2": "gpu"}, "op", "measured: test",
                    [Lane(0, "cpu", "cpu", 0), Lane(1, "gpu", "gpu", 1)])
    rec.ops += [
        Op(0, 0, "Matmul", 0.0, 0.0, 1e-3, nbytes=64, start_measured=True),
        Op(1, 1, "Exp", 0.5e-3, 2e-3, 4e-3, inputs=(0,), nbytes=128),
        Op(2, 1, "Add", 0.6e-3, 1e-3, 1.5e-3, nbytes=32),
        Op(3, 0, "Log", 5e-3, None, None, nbytes=16),
    ]
    rec.flows.append(Flow(0, 1, DEVICE_SWITCH, 64))
    rec.memory += [MemorySample(1e-3, 100, 50, 300), MemorySample(6e-3, 200, 0, 300)]
    return rec


@pytest.fixture
def page(browser):
    with browser_page(browser) as page:
        expose(page, Timeline(known())._esm, NAMES)
        yield page


def test_decode_reads_a_known_payload(page):
    tl = Timeline(known())
    d = page.evaluate(DECODED_JS, [tl._meta, list(bytes(tl._payload))])
    cols = d["cols"]
    assert d["types"]["start"] == "Float64Array" and d["types"]["row"] == "Int32Array"
    assert d["types"]["flags"] == "Uint8Array"
    assert d["n"] == 4 and cols["id"] == [0, 1, 2, 3] and cols["row"] == [0, 1, 1, 0]
    assert cols["start"] == [0.0, 2e-3, 1e-3, 5e-3]  # op 3: its hand-off, a lower bound
    assert cols["flags"] == [1, 0, 0, 2]  # 1: start measured, 2: in flight
    assert cols["end"][:3] == [1e-3, 4e-3, 1.5e-3] and math.isnan(cols["end"][3])
    assert d["end"] == [1e-3, 4e-3, 1.5e-3, 6e-3]  # in flight: drawn up to meta.now
    assert [tl._meta["strings"][i] for i in cols["name"]] == ["Matmul", "Exp", "Add", "Log"]
    assert (cols["flow_src"], cols["flow_dst"], cols["flow_kind"]) == ([0], [1], [0])
    assert cols["mem_t"] == [1e-3, 6e-3] and cols["mem_peak"] == [300, 300]
    assert d["byRow"] == [[0, 3], [2, 1]]  # per lane, sorted by start
    assert d["maxDur"] == pytest.approx([1e-3, 2e-3])
    assert d["memTop"] == 300
    assert d["full"] == pytest.approx([-0.02 * 6e-3, 1.02 * 6e-3])  # 2% margins


def golden_times() -> list[float]:
    edges = [0.0, -0.0, 1.0, -1.0, 0.999999, 0.9999951, 1e-3, 0.99e-3, 1e-9, 2.5e-7, 12.345e-3,
             1.125, -1.125, 0.125e-3 * 3, 2.675, 1234.5678, -3.5e-5]
    rnd = random.Random(0)
    return edges + [rnd.uniform(-1, 1) * 10 ** rnd.uniform(-8, 3) for _ in range(300)]


def golden_bytes() -> list[float]:
    edges = [0, 1, 0.5, 1.5, 2.5, -0.5, 512, 1023, 1023.5, 1024, 1280, 1536, -2048,
             12 * 2**20, 3.2 * 2**30, 5 * 2**40, 1.05 * 2**20, 1.25 * 2**30]
    rnd = random.Random(1)
    return edges + [rnd.choice([1, -1]) * int(10 ** rnd.uniform(0, 13)) for _ in range(300)]


def test_formatters_say_what_python_says(page):
    """Including exact ties (1.125 s, 1280 B), which Python rounds to even."""
    times, sizes = golden_times(), golden_bytes()
    js = page.evaluate("([ts, bs]) => [ts.map(window.unimem.fmtTime), bs.map(window.unimem.fmtBytes)]",
                       [times, sizes])
    assert js[0] == [fmt_time(t) for t in times]
    assert js[1] == [fmt_bytes(b) for b in sizes]
    assert page.evaluate("window.unimem.fmtTime(null)") == fmt_time(None)


def test_palette_gives_every_name_python_sends_one_colour(page):
    palette, flows, counters = page.evaluate(
        "[window.unimem.PALETTE, window.unimem.FLOWS, window.unimem.COUNTERS]")
    assert set(flows) == set(FLOW_KINDS)  # every kind a Recording's flows can have
    assert counters == list(COUNTERS)
    for name in [*flows, *counters, *CLASSES, "cpu", "gpu"]:
        assert name in palette, name
    assert len(set(palette.values())) == len(palette)  # no colour with two meanings
