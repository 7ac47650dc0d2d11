"""Charts of measured placements, drawn with plotly, each with a text form.

A table of medians is hard to read at a glance; a bar per placement with its
interquartile range is not. Each chart here is a :class:`Chart`: in JupyterLab
it renders as an interactive plotly figure (through the renderer plotly ships for
JupyterLab), and its ``repr`` is a deterministic text form of the same numbers,
for nbval and for terminals. The figures are built from plain model data
(``Comparison``, ``Ledger``, ``Group``): views never call MLX.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from ..model.placement import Group, Ledger
from ..model.recording import Timing
from ..model.text import TextRepr, fmt_time, text_table

# plotly's "none" template and a few settings of our own: a named template such as
# "plotly_white" is stored whole inside every figure (some 20 KiB per chart in a notebook)
TEMPLATE = "none"
STYLE: dict[str, Any] = {
    "template": TEMPLATE, "paper_bgcolor": "white", "plot_bgcolor": "white",
    "font": {"family": "sans-serif", "size": 12},
    "xaxis": {"gridcolor": "#eee", "zeroline": False},
    "yaxis": {"gridcolor": "#eee", "zeroline": False, "rangemode": "tozero"},
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
}
MS = 1e3  # the charts' axes are in milliseconds
# one colour per candidate source (plotly's default qualitative palette)
SOURCE_COLOURS = {"trivial": "#636efa", "hand": "#00cc96", "predicted": "#ef553b"}


class Chart(TextRepr):
    """A plotly figure and the text that says the same: ``.figure`` to style or save it."""

    _html_class = "unimem-chart"

    def __init__(self, figure: go.Figure, lines: list[str]) -> None:
        self.figure = figure
        self._lines = lines

    def lines(self) -> list[str]:
        return list(self._lines)

    def text(self) -> str:
        """The text form: the same numbers as the figure, one line each (also its repr)."""
        return repr(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """plotly's own bundle for the figure (JupyterLab draws it), plus the text form."""
        bundle: dict[str, Any] = pio.renderers["plotly_mimetype"].to_mimebundle(
            self.figure.to_dict())
        bundle["text/plain"] = repr(self)
        return bundle


def _median_bars(timings: Mapping[str, Timing], title: str, xaxis: str) -> go.Figure:
    labels, medians = list(timings), [t.median * MS for t in timings.values()]
    fig = go.Figure(go.Bar(
        x=labels, y=medians, marker_color=SOURCE_COLOURS["hand"],
        error_y={"type": "data", "symmetric": False,
                 "array": [t.q3 * MS - m for t, m in zip(timings.values(), medians)],
                 "arrayminus": [m - t.q1 * MS for t, m in zip(timings.values(), medians)]},
        hovertemplate="%{x}: median %{y:.3f} ms<extra></extra>", name="median"))
    fig.update_layout(**STYLE)
    fig.update_layout(title=title, yaxis_title="median time (ms)",
                      xaxis_title=xaxis, showlegend=False)
    return fig


def comparison_chart(comparison: Any) -> Chart:
    """Median plain-run time per placement, with its interquartile range (q1 to q3).

    ``comparison`` is a :class:`unimem.Comparison` (``um.compare``, or an explore
    widget's ``comparison``).
    """
    timings = {r.label: r.timing for r in comparison.rows}
    runs = len(comparison.rows[0].timing.samples)
    fig = _median_bars(timings, f"{comparison.title}: median of {runs} plain runs per "
                       "placement (bars: IQR)", "placement")
    return Chart(fig, comparison.lines())


def timings_chart(title: str, timings: Mapping[str, Timing]) -> Chart:
    """Medians with their interquartile ranges for any labelled plain-run statistics
    (``um.profile(...).timing``): the parts of an experiment side by side."""
    if not timings:
        raise ValueError("timings is empty: give {label: Timing}")
    fig = _median_bars(timings, f"{title} (bars: IQR)", "")
    rows = [["", "median", "IQR", "runs"]]
    rows += [[label, fmt_time(t.median), fmt_time(t.iqr), str(len(t.samples))]
             for label, t in timings.items()]
    return Chart(fig, [title, *text_table(rows)])


def ledger_chart(ledger: Ledger, log: bool = False) -> Chart:
    """Predicted against measured time per candidate, on the line where they agree.

    One marker colour per source (trivial, hand, predicted); the chosen candidate is
    outlined. ``log=True`` puts both axes on a log scale, for candidates that differ
    by orders of magnitude. A candidate without a prediction or a measurement has no
    point; the text form (the ledger's own) lists every candidate.
    """
    both = [c for c in ledger.candidates if c.predicted is not None and c.median is not None]
    fig = go.Figure()
    for source, colour in SOURCE_COLOURS.items():
        cs = [c for c in both if c.source == source]
        if not cs:
            continue
        fig.add_trace(go.Scatter(
            x=[c.median * MS for c in cs if c.median is not None],
            y=[c.predicted * MS for c in cs if c.predicted is not None],
            mode="markers", name=source, text=[c.label for c in cs],
            marker={"color": colour, "size": 11,
                    "line": {"width": [3 if c.label == ledger.chosen else 0 for c in cs],
                             "color": "black"}},
            hovertemplate="%{text}: measured %{x:.3f} ms, predicted %{y:.3f} ms<extra></extra>"))
    values = [v * MS for c in both for v in (c.median, c.predicted) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if log and lo > 0:  # a fixed factor either side: the same look at any scale
        ends = [lo / 1.25, hi * 1.25]
    else:
        pad = (hi - lo) * 0.05 or hi * 0.05 or 1.0
        ends = [max(lo - pad, 0.0), hi + pad]
    fig.add_trace(go.Scatter(x=ends, y=ends, mode="lines",
                             name="predicted = measured",
                             line={"color": "#888", "dash": "dot"}, hoverinfo="skip"))
    fig.update_layout(**STYLE)
    fig.update_layout(title=f"{ledger.title}: predicted vs measured "
                      f"(chosen: {ledger.chosen}, outlined)", xaxis_title="measured median (ms)",
                      yaxis_title="predicted (ms)",
                      xaxis_type="log" if log else "linear",
                      yaxis_type="log" if log else "linear")
    return Chart(fig, ledger.lines())


def group_cost_chart(groups: Sequence[Group], targets: Sequence[str]) -> Chart:
    """Each group's measured cost on each target: where its work is cheap."""
    fig = go.Figure([
        go.Bar(name=t, x=[g.name for g in groups], y=[g.cost.get(t, 0.0) * MS for g in groups],
               hovertemplate="%{x} on " + t + ": %{y:.3f} ms<extra></extra>")
        for t in targets])
    fig.update_layout(**STYLE)
    fig.update_layout(barmode="group", xaxis_title="group",
                      yaxis_title="measured cost (ms)",
                      title="each group's primitives, summed: measured at both ends")
    rows = [["group", "primitives", *targets]]
    rows += [[g.name, str(g.primitives), *(fmt_time(g.cost.get(t)) for t in targets)]
             for g in groups]
    return Chart(fig, ["Measured cost per group and target", *text_table(rows)])

