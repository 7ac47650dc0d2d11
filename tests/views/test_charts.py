"""Charts: the plotly figures' data, and the text forms nbval compares."""

from __future__ import annotations

import pytest

from unimem.comparison import Comparison, Row
from unimem.model.placement import Candidate, Group, Ledger
from unimem.model.recording import Recording, Timing
from unimem.views.charts import comparison_chart, group_cost_chart, ledger_chart, timings_chart


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
                  [], [cand("all cpu", "trivial", 0.020, [0.021, 0.022, 0.020]),
                       cand("hand", "hand", 0.012, [0.013, 0.012, 0.014]),
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
