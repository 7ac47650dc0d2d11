"""Several placements of one call, measured side by side in one session."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._call import bind
from ._measure import profile_call
from ._recording import Recording, fmt_time
from ._streams import StreamLike
from ._timeline import Timeline


@dataclass(frozen=True)
class Row:
    label: str
    recording: Recording

    @property
    def median(self) -> float:
        assert self.recording.timing is not None
        return self.recording.timing.median


@dataclass
class Comparison:
    """Plain-run statistics per placement, each with its measured timeline."""

    title: str
    rows: list[Row]

    def __getitem__(self, label: str) -> Recording:
        for row in self.rows:
            if row.label == label:
                return row.recording
        raise KeyError(f"no placement {label!r}; placements: {[r.label for r in self.rows]}")

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]

    def speedup(self, label: str) -> float:
        """How many times faster than the first placement (>1 is faster)."""
        return self.rows[0].median / self[label].timing.median  # type: ignore[union-attr]

    @property
    def fastest(self) -> str:
        return min(self.rows, key=lambda r: r.median).label

    def timeline(self, window: int = 20_000) -> Timeline:
        """Every placement's recorded run, stacked on one shared time scale."""
        return Timeline(*(r.recording for r in self.rows), window=window, labels=self.labels)

    def _table(self) -> list[list[str]]:
        out = []
        for row in self.rows:
            t = row.recording.timing
            assert t is not None
            placement = ", ".join(f"{k}={v}" for k, v in row.recording.placement.items())
            out.append([row.label, placement, fmt_time(t.median), fmt_time(t.iqr),
                        f"{self.speedup(row.label):.2f}×"])
        return out

    _HEAD = ["placement", "streams", "median", "IQR", "speedup vs first"]

    def __repr__(self) -> str:
        rows = [self._HEAD] + self._table()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEAD))]
        runs = len(self.rows[0].recording.timing.samples)  # type: ignore[union-attr]
        lines = [f"Comparison of {self.title} ({runs} plain runs each)"]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._HEAD)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                       for r in self._table())
        return (f"<div class='unimem-comparison'><b>Comparison of {html.escape(self.title)}"
                f"</b><table><tr>{head}</tr>{body}</table></div>")


def compare(
    fun: Callable[..., Any],
    *args: Any,
    placements: Mapping[str, Mapping[str, StreamLike]],
    repeat: int = 20,
    warmup: int = 2,
    mode: str = "segment",
    **kwargs: Any,
) -> Comparison:
    """Measure ``fun`` under each named placement; speedups are against the first."""
    if not placements:
        raise ValueError("placements is empty: give at least one, e.g. "
                         "{'all cpu': dict(d1='cpu', d2='cpu')}")
    calls = {label: bind(fun, args, kwargs, p) for label, p in placements.items()}
    for call in calls.values():
        call.placement.resolve()  # every placement valid before any measuring starts
    rows = [Row(label, profile_call(call, repeat=repeat, warmup=warmup, mode=mode, trace=False))
            for label, call in calls.items()]
    return Comparison(next(iter(calls.values())).title, rows)
