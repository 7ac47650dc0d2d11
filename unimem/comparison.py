"""Several placements of one call, measured side by side in one session."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .capture.call import Placer, bind
from .capture.streams import StreamLike
from .checks import check_placements
from .model.recording import Recording, Timing
from .model.text import TextRepr, fmt_placement, fmt_time, text_table
from .profiler import AUTO, profile_call
from .views.charts import Chart, comparison_chart
from .views.timeline import WINDOW, Timeline


@dataclass(frozen=True)
class Row:
    label: str
    recording: Recording

    @property
    def timing(self) -> Timing:
        """Plain-run statistics: every row comes from ``profile_call``, which times."""
        assert self.recording.timing is not None
        return self.recording.timing

    @property
    def median(self) -> float:
        return self.timing.median


@dataclass(repr=False)
class Comparison(TextRepr):
    """Plain-run statistics per placement, each with its measured timeline."""

    title: str
    rows: list[Row]

    def _row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"no placement {label!r}; placements: {[r.label for r in self.rows]}")

    def __getitem__(self, label: str) -> Recording:
        return self._row(label).recording

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]

    def speedup(self, label: str) -> float:
        """How many times faster than the first placement (>1 is faster)."""
        return self.rows[0].median / self._row(label).median

    @property
    def fastest(self) -> str:
        return min(self.rows, key=lambda r: r.median).label

    def chart(self) -> Chart:
        """The medians as bars with their IQRs (plotly), with the table as its text."""
        return comparison_chart(self)

    def timeline(self, window: int = WINDOW) -> Timeline:
        """Every placement's recorded run, stacked on one shared time scale."""
        return Timeline(*(r.recording for r in self.rows), window=window, labels=self.labels)

    def table(self) -> list[list[str]]:
        """The header and one row of text per placement, as repr and the explore widget show."""
        out = [list(self._HEAD)]
        for row in self.rows:
            t = row.timing
            out.append([row.label, fmt_placement(row.recording.placement), fmt_time(t.median),
                        fmt_time(t.iqr), f"{self.speedup(row.label):.2f}×"])
        return out

    _HEAD = ("placement", "streams", "median", "IQR", "speedup vs first")

    def lines(self) -> list[str]:
        runs = len(self.rows[0].timing.samples)
        return [f"Comparison of {self.title} ({runs} plain runs each)",
                *text_table(self.table())]


def compare(
    fun: Callable[..., Any],
    *args: Any,
    placements: Mapping[str, Mapping[str, StreamLike] | Placer],
    repeat: int = 20,
    warmup: int = 2,
    mode: str = AUTO,
    **kwargs: Any,
) -> Comparison:
    """Measure ``fun`` under each named placement; speedups are against the first.

    ``mode`` is as for :func:`unimem.profile`: ``"auto"`` (native where the probe is
    built, per placement: one with GPU primitives is recorded with ``segment``).
    """
    check_placements(placements)
    calls = {label: bind(fun, args, kwargs, p) for label, p in placements.items()}
    for call in calls.values():
        call.placement.resolve()  # every placement valid before any measuring starts
    first = next(iter(calls.values()))  # its profile_call checks repeat, warmup, mode first
    rows = [Row(label, profile_call(call, repeat=repeat, warmup=warmup, mode=mode, trace=False))
            for label, call in calls.items()]
    return Comparison(first.title, rows)
