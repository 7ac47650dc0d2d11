"""Placements of any code as data: rule lists, groups, and autoplace's ledger.

A *rule list* is ordered pairs ``(selector, target)``, last match wins, as
``um.place`` takes them: ``("*", "cpu")``, ``("module:layers.0.**", "cpu:1")``,
``("op:matmul", "gpu")``. A *group* is what a person places as one thing (a module,
an op kind, a region); its cost per target is measured, never assumed. The
*ledger* is every candidate placement autoplace considered: what the simulator
predicted (derived) next to what the plain runs measured, so that the model's
error is in the data and the choice is made from measurements only.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .recording import Timing
from .text import TextRepr, fmt_bytes, fmt_time, plural, prose, text_table

Rule = tuple[str, str]  # (selector, target): "module:layers.0.**" -> "cpu:1"
Rules = tuple[Rule, ...]
Source = Literal["trivial", "hand", "predicted"]


def fmt_rules(rules: Sequence[Rule]) -> str:
    """A rule list as Python a user can paste: ``{"*": "cpu", "op:matmul": "gpu"}``."""
    return "{" + ", ".join(f"{sel!r}: {target!r}" for sel, target in rules) + "}"


@dataclass(frozen=True)
class Group:
    """Ops placed together, found by tracing: how many primitives, what crosses out."""

    name: str  # "layers.0", "op:matmul", "region:prefetch", "(rest)"
    primitives: int
    bytes_in: int = 0  # bytes of edges entering the group from other groups
    bytes_out: int = 0  # bytes of edges leaving it
    # measured seconds per target: the sum of the group's primitive durations,
    # each measured at both ends on its stream (empty until measured)
    cost: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Handoff:
    """The cost of an array crossing from one target's device to another's, fitted as
    ``fixed + per_byte * bytes`` from hand-offs measured on this machine."""

    src: str  # device: "cpu" or "gpu"
    dst: str
    fixed: float  # seconds
    per_byte: float  # seconds per byte
    samples: int = 0  # measurements the fit used

    def cost(self, nbytes: int) -> float:
        return self.fixed + self.per_byte * nbytes

    def describe(self) -> str:
        per_mib = self.per_byte * (1 << 20)
        return (f"{self.src}->{self.dst}: {fmt_time(self.fixed)} + {fmt_time(per_mib)} per "
                f"{fmt_bytes(1 << 20)} ({plural(self.samples, 'measurement')})")


@dataclass(frozen=True)
class Candidate:
    """One placement autoplace considered: rules, prediction (derived), plain runs (measured)."""

    label: str
    rules: Rules
    source: Source  # trivial (all on one target), hand (tried by the user), predicted
    assignment: Mapping[str, str] = field(default_factory=dict)  # group -> target
    predicted: float | None = None  # seconds, from the simulator: derived, never measured
    measured: Timing | None = None  # plain runs, interleaved with the other candidates

    @property
    def median(self) -> float | None:
        return None if self.measured is None else self.measured.median

    @property
    def error(self) -> float | None:
        """predicted / measured - 1: how wrong the model was about this one."""
        if self.predicted is None or self.median is None or self.median <= 0:
            return None
        return self.predicted / self.median - 1


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None below three pairs."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None

    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx_, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx_) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx_) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return None if var == 0 else cov / var


@dataclass(repr=False)
class Ledger(TextRepr):
    """Everything autoplace weighed, and the measured placement it returned."""

    _html_class = "unimem-ledger"

    title: str
    targets: tuple[str, ...]
    groups: list[Group]
    handoffs: list[Handoff]
    candidates: list[Candidate]
    chosen: str  # a candidate's label: always one with a measurement
    beyond_noise: bool  # the chosen one beats the best hand placement beyond the IQRs
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, label: str) -> Candidate:
        for c in self.candidates:
            if c.label == label:
                return c
        raise KeyError(f"no candidate {label!r}; candidates: {[c.label for c in self.candidates]}")

    @property
    def best(self) -> Candidate:
        return self[self.chosen]

    @property
    def rules(self) -> Rules:
        """The chosen placement's rules, as ``um.place`` takes them."""
        return self.best.rules

    @property
    def measured(self) -> list[Candidate]:
        return [c for c in self.candidates if c.measured is not None]

    def prediction_error(self) -> float | None:
        """Median |predicted / measured - 1| over the candidates that have both."""
        errs = [abs(c.error) for c in self.candidates if c.error is not None]
        return statistics.median(errs) if errs else None

    def rank_correlation(self) -> float | None:
        """Spearman correlation of predicted and measured times (None below three)."""
        both = [c for c in self.candidates if c.predicted is not None and c.median is not None]
        return spearman([c.predicted for c in both if c.predicted is not None],
                        [c.median for c in both if c.median is not None])

    def table(self) -> list[list[str]]:
        rows = [["candidate", "source", "predicted", "measured", "IQR", "error", "rules"]]
        for c in self.candidates:
            err = "" if c.error is None else f"{c.error:+.0%}"
            rows.append([c.label + (" *" if c.label == self.chosen else ""), c.source,
                         fmt_time(c.predicted), fmt_time(c.median),
                         "" if c.measured is None else fmt_time(c.measured.iqr), err,
                         fmt_rules(c.rules)])
        return rows

    def lines(self) -> list[str]:
        head = (f"Autoplace of {self.title}: {plural(len(self.groups), 'group')} on "
                f"{', '.join(self.targets)}; {plural(len(self.measured), 'placement')} measured")
        lines = [head]
        lines += text_table(self.table())
        verdict = "beyond noise" if self.beyond_noise else "not beyond noise"
        lines.append(f"  chosen (measured, {verdict}): {self.chosen}")
        lines += prose(f"  rules: {fmt_rules(self.rules)}")
        err, rho = self.prediction_error(), self.rank_correlation()
        if err is not None:
            rank = "" if rho is None else f", rank correlation {rho:+.2f}"
            lines.append(f"  prediction error: median {err:.0%}{rank}")
        lines += [x for n in self.notes for x in prose(f"  note: {n}")]
        return lines
