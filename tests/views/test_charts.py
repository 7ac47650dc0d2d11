"""Charts: the plotly figures' data, and the text forms nbval compares."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from unimem.comparison import Comparison, Row
from unimem.model.placement import Candidate, Group, Ledger
from unimem.model.recording import Recording, Timing
from unimem.views.charts import (
    TEMPLATE,
    Chart,
    comparison_chart,
    group_cost_chart,
    ledger_chart,
    timings_chart,
)

CHARTS = Path(__file__).resolve().parents[2] / "unimem" / "views" / "charts.py"


def rec(samples):
    r = Recording(title="f", placement={"d": "cpu"}, mode="native", method="by hand")
    r.timing = Timing(tuple(samples), 1)
    return r


@pytest.fixture
def comparison():
    return Comparison("fun", [Row("all cpu", rec([0.010, 0.012, 0.011, 0.013, 0.009])),
                              Row("split", rec([0.005, 0.006, 0.0055, 0.0065, 0.0045]))])


def test_comparison_bars_are_medians_with_their_interquartile_ranges(comparison):
    chart = comparison_chart(comparison)
    (bar,) = chart.figure.data
    assert list(bar.x) == ["all cpu", "split"]
    assert list(bar.y) == pytest.approx([11.0, 5.5])
    t = comparison.rows[0].timing
    assert bar.error_y.array[0] == pytest.approx((t.q3 - t.median) * 1e3)
    assert bar.error_y.arrayminus[0] == pytest.approx((t.median - t.q1) * 1e3)
    assert chart.figure.layout.yaxis.title.text == "median time (ms)"
    assert chart.lines() == [
        "Comparison of fun (5 plain runs each)",
        "  placement  streams  median    IQR      speedup vs first",
        "  all cpu    d=cpu    11.00 ms  2.00 ms  1.00×",
        "  split      d=cpu    5.50 ms   1.00 ms  2.00×"]
    assert comparison.chart().lines() == chart.lines()


def test_the_bundle_is_plotlys_own_plus_the_text(comparison):
    bundle = comparison_chart(comparison)._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/plain"}
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "bar"
    assert bundle["text/plain"].startswith("Comparison of fun")


def ledger():
    def cand(label, source, predicted, samples):
        return Candidate(label, (("*", "cpu"),) if source == "trivial" else
                         (("*", "cpu"), ("module:left", "cpu:1")), source,
                         predicted=predicted, measured=Timing(tuple(samples), 0))
    return Ledger("step", ("cpu", "cpu:1"), [Group("left", 4, 10, 20, {"cpu": 0.002,
                                                                        "cpu:1": 0.003})],
                  [], [cand("all cpu", "trivial", 0.020, [0.021, 0.023, 0.020]),
                       cand("hand", "hand", 0.012, [0.013, 0.012, 0.015]),
                       cand("predicted #1", "predicted", 0.010, [0.011, 0.0105, 0.0115])],
                  "predicted #1", True)


def test_ledger_chart_puts_each_candidate_against_the_agreement_line():
    chart = ledger_chart(ledger())
    by_name = {t.name: t for t in chart.figure.data}
    assert set(by_name) == {"trivial", "hand", "predicted", "predicted = measured"}
    p = by_name["predicted"]
    assert list(p.x) == pytest.approx([11.0]) and list(p.y) == pytest.approx([10.0])
    assert list(p.marker.line.width) == [3]  # the chosen one is outlined
    assert list(by_name["hand"].marker.line.width) == [0]
    line = by_name["predicted = measured"]
    assert line.x[0] <= 10.0 and line.x[1] >= 21.0 and list(line.x) == list(line.y)
    text = repr(chart).splitlines()
    assert text[0] == "Autoplace of step: 1 group on cpu, cpu:1; 3 placements measured"
    assert text[-3] == "  chosen (measured, beyond noise): predicted #1"


def test_group_costs_per_target():
    chart = group_cost_chart(ledger().groups, ("cpu", "cpu:1"))
    assert [t.name for t in chart.figure.data] == ["cpu", "cpu:1"]
    assert list(chart.figure.data[1].y) == pytest.approx([3.0])
    assert chart.lines() == ["Measured cost per group and target",
                             "  group  primitives  cpu      cpu:1",
                             "  left   4           2.00 ms  3.00 ms"]


def test_any_labelled_timings():
    chart = timings_chart("hand-off", {"write": Timing((0.001, 0.002, 0.003), 0),
                                       "pair": Timing((0.004, 0.004, 0.004), 0)})
    assert list(chart.figure.data[0].y) == pytest.approx([2.0, 4.0])
    assert chart.lines() == ["hand-off",
                             "         median   IQR      runs",
                             "  write  2.00 ms  1.00 ms  3",
                             "  pair   4.00 ms  0.0 µs   3"]
    with pytest.raises(ValueError, match="empty"):
        timings_chart("x", {})


def test_every_bar_has_its_own_asymmetric_interquartile_range():
    # skewed samples: q1..q3 is not centred on the median, so the bars must not be symmetric
    c = Comparison("skew", [Row("a", rec([0.001, 0.002, 0.0021, 0.005, 0.009])),
                            Row("b", rec([0.004])),  # one run: no spread at all
                            Row("c", rec([0.003, 0.003, 0.0031, 0.006]))])
    (bar,) = comparison_chart(c).figure.data
    assert bar.error_y.symmetric is False and bar.error_y.type == "data"
    for i, row in enumerate(c.rows):
        t = row.timing
        assert bar.y[i] == pytest.approx(t.median * 1e3)
        assert bar.y[i] + bar.error_y.array[i] == pytest.approx(t.q3 * 1e3)
        assert bar.y[i] - bar.error_y.arrayminus[i] == pytest.approx(t.q1 * 1e3)
        assert bar.error_y.array[i] >= 0 and bar.error_y.arrayminus[i] >= 0
    assert bar.error_y.array[0] != pytest.approx(bar.error_y.arrayminus[0])
    assert (bar.error_y.array[1], bar.error_y.arrayminus[1]) == (0, 0)
    assert list(bar.x) == ["a", "b", "c"]  # as given, never re-sorted by time


def test_the_layout_is_fixed(comparison):
    layout = comparison_chart(comparison).figure.layout
    assert layout.title.text == "fun: median of 5 plain runs per placement (bars: IQR)"
    assert layout.xaxis.title.text == "placement"
    assert layout.yaxis.title.text == "median time (ms)"
    assert layout.template.layout.to_plotly_json() == {}  # "none": not 20 KiB of template
    assert TEMPLATE == "none"
    assert "updatemenus" not in layout.to_plotly_json()  # no animation, no buttons


def test_the_same_numbers_give_the_same_bundle(comparison):
    """No ids, no times of day: two charts of one comparison serialise byte for byte alike."""
    first = json.dumps(comparison_chart(comparison)._repr_mimebundle_(), sort_keys=True)
    again = json.dumps(comparison_chart(comparison)._repr_mimebundle_(), sort_keys=True)
    assert first == again
    assert "uid" not in first
    assert len(first) < 4000  # the figure alone, without a named template inside it


def test_a_chart_is_text_in_every_text_channel(comparison):
    chart = comparison_chart(comparison)
    assert isinstance(chart, Chart)
    assert chart.text() == repr(chart) == "\n".join(comparison.lines())
    assert chart._repr_mimebundle_()["text/plain"] == repr(chart)
    assert "<pre class='unimem-chart'" in chart._repr_html_()
    chart.lines().append("changed")  # a copy: the chart's text cannot be edited through it
    assert chart.lines() == comparison.lines()


SPLIT = "{'*': 'cpu', 'module:left': 'cpu:1'}"  # the hand and predicted rules, as text


def test_the_ledger_text_has_the_table_the_error_and_the_rank_correlation():
    assert ledger_chart(ledger()).lines() == [
        "Autoplace of step: 1 group on cpu, cpu:1; 3 placements measured",
        "  candidate       source     predicted  measured  IQR       error  rules",
        "  all cpu         trivial    20.00 ms   21.00 ms  1.50 ms   -5%    {'*': 'cpu'}",
        "  hand            hand       12.00 ms   13.00 ms  1.50 ms   -8%    " + SPLIT,
        "  predicted #1 *  predicted  10.00 ms   11.00 ms  500.0 µs  -9%    " + SPLIT,
        "  chosen (measured, beyond noise): predicted #1",
        "  rules: " + SPLIT,
        "  prediction error: median 8%, rank correlation +1.00",
    ]


def test_the_ledger_on_log_axes():
    chart = ledger_chart(ledger(), log=True)
    layout = chart.figure.layout
    assert (layout.xaxis.type, layout.yaxis.type) == ("log", "log")
    line = next(t for t in chart.figure.data if t.name == "predicted = measured")
    assert line.x[0] == pytest.approx(10.0 / 1.25) and line.x[1] == pytest.approx(21.0 * 1.25)
    assert list(line.x) == list(line.y)
    assert ledger_chart(ledger()).figure.layout.xaxis.type == "linear"
    assert ledger_chart(ledger(), log=True).lines() == ledger_chart(ledger()).lines()


def test_a_candidate_without_a_prediction_has_no_point_but_keeps_its_row():
    led = ledger()
    unpredicted = Candidate("by hand", (("*", "cpu:1"),), "hand",
                            measured=Timing((0.030, 0.031, 0.032), 0))
    led.candidates.append(unpredicted)
    chart = ledger_chart(led)
    labels = [label for t in chart.figure.data if t.text is not None for label in t.text]
    assert sorted(labels) == ["all cpu", "hand", "predicted #1"]
    assert any(line.startswith("  by hand ") for line in chart.lines())
    line = next(t for t in chart.figure.data if t.name == "predicted = measured")
    assert line.x[1] < 30.0  # the agreement line spans the plotted points only


def test_one_bar_trace_per_target_with_a_bar_per_group():
    groups = [Group("a", 2, cost={"cpu": 0.001, "gpu": 0.0005}),
              Group("b", 3, cost={"cpu": 0.004}),  # never measured on the gpu
              Group("(rest)", 1, cost={"cpu": 0.0001, "gpu": 0.0002})]
    chart = group_cost_chart(groups, ("cpu", "gpu"))
    assert chart.figure.layout.barmode == "group"
    assert chart.figure.layout.yaxis.title.text == "measured cost (ms)"
    cpu, gpu = chart.figure.data
    assert list(cpu.x) == list(gpu.x) == ["a", "b", "(rest)"]
    assert list(cpu.y) == pytest.approx([1.0, 4.0, 0.1])
    assert list(gpu.y) == pytest.approx([0.5, 0.0, 0.2])
    assert chart.lines() == ["Measured cost per group and target",
                             "  group   primitives  cpu       gpu",
                             "  a       2           1.00 ms   500.0 µs",
                             "  b       3           4.00 ms   n/a",
                             "  (rest)  1           100.0 µs  200.0 µs"]


def test_charts_never_import_mlx():
    """Views draw what they are handed: charts.py loads where MLX cannot be imported."""
    names = set()
    for node in ast.walk(ast.parse(CHARTS.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not {n for n in names if n.split(".")[0] == "mlx"}, names
    # and at run time: with mlx unimportable and unimem/__init__ (which imports capture) skipped
    package = CHARTS.parents[1]
    code = ("import sys, types\n"
            "sys.modules['mlx'] = None\n"  # any `import mlx...` now raises ImportError
            f"p = types.ModuleType('unimem'); p.__path__ = [{str(package)!r}]\n"
            "sys.modules['unimem'] = p\n"
            "from unimem.views.charts import comparison_chart, ledger_chart, group_cost_chart\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlx'"
            " and sys.modules[m] is not None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
