"""um.explore for code without stream parameters: place its groups live.

A training step or a model's forward pass has no ``d1=mx.gpu`` to turn. Its ops
are grouped instead - by module of the model, by MLX op, by line of code or by
``um.region`` - and each group gets a device control. Changing one builds the
rules (``um.place``) that put that group there, measures the call under them,
and adds a row to the table of runs. Beside the controls: each group's primitive
count and the bytes crossing its boundary (from a trace where every group has a
stream of its own, so MLX itself says which primitive is whose), its measured
time on each stream it has run on (natively timed runs: each op names its graph
node), the rules as text to paste into code, and the cut: every edge of the latest
run that crossed streams, between which groups, with its bytes.
"""

from __future__ import annotations

import contextlib
import html
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from .capture.call import bind
from .checks import check_window
from .comparison import Comparison, Row
from .explorer import OnItsThread, error_html, stream_choices
from .model.graph import SAME_STREAM, Graph
from .model.placement import fmt_rules
from .model.recording import Recording
from .model.text import fmt_bytes, fmt_time, html_table, plural, pre_html, text_table
from .placing import groups as grouping
from .placing.groups import KINDS, REST, Membership
from .placing.plan import Plan
from .profiler import AUTO, profile_call
from .views.closing import close_tree
from .views.timeline import WINDOW, Timeline


class ExploreGroups(OnItsThread, w.VBox):  # type: ignore[misc]  # ipywidgets: no hints
    """A device control per group of ops, Run, the latest timeline, the cut, the runs."""

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 model: Any, *, groups: str = "module", repeat: int = 10, warmup: int = 2,
                 mode: str = AUTO, window: int = WINDOW) -> None:
        check_window(window)
        self.fun, self.args, self.kwargs, self.model = fun, args, kwargs, model
        self.repeat, self.warmup, self.mode = repeat, warmup, mode
        self.results: list[Recording] = []
        self.latest: Recording | None = None
        self.times: dict[tuple[str, str], float] = {}  # (group, stream) -> latest measured
        self._quiet = False
        self._remember_thread()
        self._group(groups)  # fails here, clearly, on bad input
        self.assignment = dict.fromkeys([*self.groups, REST], "cpu")
        recording = self._measure(self.rules)
        self.kind_toggle = w.ToggleButtons(options=list(KINDS), value=self.kind,
                                           description="group by")
        self.kind_toggle.observe(self._kind_changed, names="value")
        self.button = w.Button(description="Run", icon="play", tooltip="measure this placement")
        self.button.on_click(lambda _: self._on_its_thread(self._run_quietly, None))
        self.status = w.HTML()
        self.group_header = w.HTML()
        self.group_box = w.VBox()
        self.rules_html = w.HTML()
        self.cut = w.HTML()
        self.table = w.HTML()
        self.timeline = Timeline(recording, window=window)
        self._build_rows()
        self._record(recording)
        super().__init__(children=[w.HBox([self.kind_toggle, self.button]), self.group_header,
                                   self.group_box,
                                   self.rules_html, self.status, self.timeline, self.cut,
                                   self.table])
        self.add_class("unimem-explore")

    # -- groups -------------------------------------------------------------
    def _group(self, kind: str) -> None:
        self.kind = kind
        self.groups = grouping.discover(self.fun, self.args, self.kwargs, self.model, kind)
        self.member: Membership = grouping.membership(self.fun, self.args, self.kwargs,
                                                      self.model, self.groups, kind=kind)
        self.stats = {g.name: g for g in self.member.groups([*self.groups, REST])}

    @property
    def rules(self) -> dict[str, str]:
        """The controls as ``um.place`` rules: the rest's stream for ``*``, then each group
        placed elsewhere."""
        rest = self.assignment[REST]
        return {"*": rest, **{grouping.selector(self.kind, g): t
                              for g in self.groups if (t := self.assignment[g]) != rest}}

    # -- running ------------------------------------------------------------
    def run(self, assignment: Mapping[str, str] | None = None) -> Recording:
        """Measure with ``assignment`` ({group: stream}; the others keep theirs); the
        controls follow. On the widget's thread only (MLX streams belong to it)."""
        self._check_thread()
        unknown = set(assignment or {}) - set(self.assignment)
        if unknown:
            raise ValueError(f"no group {min(unknown)!r}; groups: {[*self.groups, REST]}")
        new = {**self.assignment, **(assignment or {})}
        try:
            self.status.value = html.escape(f"running {fmt_rules(list(self.rules.items()))} …")
            self.button.disabled = True
            old, self.assignment = self.assignment, new
            try:
                recording = self._measure(self.rules)
            except Exception:
                self.assignment = old
                raise
        except Exception as exc:
            self.status.value = error_html(exc)
            raise
        finally:
            self.button.disabled = False
        self._quiet = True
        try:
            for g, control in self.controls.items():
                control.value = self.assignment[g]
        finally:
            self._quiet = False
        self.timeline.show(recording)
        self._record(recording)
        return recording

    def _measure(self, rules: dict[str, str]) -> Recording:
        call = bind(self.fun, self.args, self.kwargs, Plan(rules, self.model))
        recording = profile_call(call, repeat=self.repeat, warmup=self.warmup, mode=self.mode,
                                 trace=True)
        self._take_times(recording)
        return recording

    def _take_times(self, rec: Recording) -> None:
        """Each group's measured time on the stream it ran on in this run (ops that name
        their graph node; the run's graph must be the labelled trace's, node for node)."""
        graph = rec.graph
        if graph is None or [n.name for n in graph.nodes] != [
                n.name for n in self.member.graph.nodes]:
            return
        took: dict[tuple[str, str], float] = {}
        for op in rec.ops:
            if op.node is None or op.duration is None:
                continue
            key = (self.member.group_of[op.node], rec.lanes[op.lane].name)
            took[key] = took.get(key, 0.0) + op.duration
        self.times.update(took)

    def _changed(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._on_its_thread(self._run_quietly, None)

    def _run_quietly(self, _: object) -> None:
        if self.comm is None:  # closed meanwhile
            return
        with contextlib.suppress(Exception):  # run() wrote it into the status line
            self.run({g: c.value for g, c in self.controls.items()})

    def _kind_changed(self, change: dict[str, Any]) -> None:
        try:
            self._group(change["new"])
        except Exception as exc:  # noqa: BLE001 - a callback: shown in the status line
            self.status.value = error_html(exc)
            return
        self.assignment = dict.fromkeys([*self.groups, REST], self.assignment[REST])
        self.times = {}  # (rest) is another set of ops under another grouping
        self._build_rows()
        self._show_rules()

    # -- views --------------------------------------------------------------
    def _build_rows(self) -> None:
        self.controls = {}
        rows = []
        for g in [*self.groups, REST]:
            control = w.Dropdown(options=stream_choices(self.assignment[g]),
                                 value=self.assignment[g], layout=w.Layout(width="110px"))
            control.observe(self._changed, names="value")
            self.controls[g] = control
            rows.append(w.HBox([control, w.HTML()]))
        self.group_box.children = rows
        self._show_groups()

    def _show_groups(self) -> None:
        table = self.group_table()
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

        def line(cells: list[str]) -> str:
            text = "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
            return f"<code style='white-space:pre'>{html.escape(text)}</code>"

        # the header over the rows' text, past the controls' column
        self.group_header.value = f"<div style='margin-left:114px'>{line(table[0])}</div>"
        for row, cells in zip(self.group_box.children, table[1:]):
            row.children[1].value = line(cells)

    def group_table(self) -> list[list[str]]:
        """One row per group: name, primitives, bytes in and out, measured times."""
        rows = [["group", "primitives", "bytes in", "bytes out", "measured"]]
        for g in [*self.groups, REST]:
            s = self.stats[g]
            seen = ", ".join(f"{stream} {fmt_time(t)}" for (group, stream), t
                             in sorted(self.times.items()) if group == g) or "not yet"
            rows.append([g, str(s.primitives), fmt_bytes(s.bytes_in), fmt_bytes(s.bytes_out),
                         seen])
        return rows

    def cut_table(self) -> list[list[str]]:
        """The latest run's edges across streams, by groups and kinds, with their bytes."""
        rows = [["from group", "to group", "kind", "edges", "bytes"]]
        graph: Graph | None = self.latest.graph if self.latest is not None else None
        if graph is None or len(graph.nodes) != len(self.member.group_of):
            return rows
        cut: Counter[tuple[str, str, str]] = Counter()
        size: Counter[tuple[str, str, str]] = Counter()
        for e in graph.edges:
            if e.src is None or e.kind == SAME_STREAM or graph.nodes[e.dst].synthetic:
                continue
            key = (self.member.group_of[e.src], self.member.group_of[e.dst], str(e.kind))
            cut[key] += 1
            size[key] += e.nbytes
        for key in sorted(cut, key=lambda k: -size[k]):
            rows.append([*key, str(cut[key]), fmt_bytes(size[key])])
        return rows

    def _show_rules(self) -> None:
        self.rules_html.value = pre_html(self.rules_text(), "unimem-rules")

    def rules_text(self) -> str:
        """The controls as code to paste: the same rules ``run`` measured."""
        return f"um.place(model, {fmt_rules(list(self.rules.items()))})"

    def _record(self, recording: Recording) -> None:
        self.results.append(recording)
        self.latest = recording
        self._show_groups()
        self._show_rules()
        cut = self.cut_table()
        self.cut.value = ("<div class='unimem-cut'><b>the cut: edges across streams in the "
                          f"latest run ({plural(len(cut) - 1, 'pair')} of groups)</b>"
                          f"{html_table(cut)}</div>")
        self.table.value = (f"<div class='unimem-results'><b>"
                            f"{html.escape(self.comparison.lines()[0])}</b>"
                            f"{html_table(self.comparison.table())}</div>")
        t = recording.timing
        assert t is not None
        self.status.value = html.escape(f"latest: {t.describe()}")

    @property
    def comparison(self) -> Comparison:
        rows = [Row(f"#{i + 1}", rec) for i, rec in enumerate(self.results)]
        return Comparison(getattr(self.fun, "__name__", "the call"), rows)

    def close(self) -> None:
        close_tree(self, super().close)
        self.results, self.latest = [], None

    def lines(self) -> list[str]:
        title = getattr(self.fun, "__name__", "the call")
        head = (f"Explore {title}: {plural(len(self.groups), 'group')} by {self.kind}, "
                f"{plural(len(self.results), 'run')} so far")
        out = [head]
        out += text_table(self.group_table())
        out.append(f"  rules: {self.rules_text()}")
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        data: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = repr(self)
        return data
