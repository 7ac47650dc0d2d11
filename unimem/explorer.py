"""um.explore: place a function's ops with dropdowns, run, and compare what happened.

One control per stream parameter (only the streams that exist here), a Run
button, and a re-run whenever a control changes; below them the timeline of the
latest run and a table of every run so far, one row each (the comparison table of
``um.compare``, speedups against the first). Each run is ``profile_call`` on the
bound call: the widget only re-places the same call, it never guesses anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .capture.call import Call, bind
from .capture.streams import StreamLike, gpu_available, parse_name
from .checks import check_window
from .comparison import Comparison, Row
from .errors import ArgumentValueError, WrongThreadError
from .model.recording import Recording
from .model.text import fmt_placement, html_table, plural
from .profiler import AUTO, profile_call
from .views.closing import close_tree
from .views.timeline import WINDOW, Timeline

if TYPE_CHECKING:
    from .explore_groups import ExploreGroups


def stream_choices(current: str | None = None) -> list[str]:
    """The streams a person can pick here: the CPU, a second CPU stream, the GPU if any."""
    choices = ["cpu", "cpu:1"] + (["gpu"] if gpu_available() else [])
    if current is not None and current not in choices:
        choices.append(current)  # e.g. "cpu:2", given by the caller and already valid
    return choices


class OnItsThread:
    """Runs only on the thread that made the widget, and controls handed back to it.

    MLX streams belong to the thread that made them (mx.new_stream; even a device's
    default stream differs per thread), and "cpu:1" resolves per thread. Every run
    happens on the thread that made the widget (the kernel's main thread), so every
    run and the cell's own runs share streams; a control's callback arriving on
    another thread is handed to this thread's event loop (the kernel's), if it has one.
    """

    status: w.HTML

    def _remember_thread(self) -> None:
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            raise WrongThreadError(
                "Explore.run() was called on another thread than the one that made the "
                "widget; MLX's streams belong to their thread, so it would measure on other "
                "streams than the cell did. Call run() on the widget's thread (the kernel's "
                "main thread); its controls hand their runs to that thread themselves.")

    def _on_its_thread(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` now if this is the widget's thread, else hand it there."""
        if threading.get_ident() == self._thread:
            fn(arg)
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, arg)
        else:
            self.status.value = (
                "<span class='unimem-error' style='color:#b00'>not run: this control was "
                "used on another thread than the one that made the widget, which has no "
                "event loop to run it on (MLX streams belong to their thread); call "
                "run() on that thread</span>")


def error_html(exc: BaseException) -> str:
    return (f"<span class='unimem-error' style='color:#b00'>{html.escape(type(exc).__name__)}: "
            f"{html.escape(str(exc))}</span>")


class Explore(OnItsThread, w.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """Dropdowns per stream parameter, Run, the latest timeline, a table of runs."""

    def __init__(self, call: Call, *, repeat: int = 10, warmup: int = 2, mode: str = AUTO,
                 window: int = WINDOW) -> None:
        check_window(window)  # the rest is checked by profile_call before it runs anything
        self.call, self.repeat, self.warmup, self.mode = call, repeat, warmup, mode
        self.results: list[Recording] = []  # one per run, in order: row #1 is the first
        self.latest: Recording | None = None
        self._quiet = False  # set while run() moves the dropdowns itself
        self._remember_thread()
        recording = self._measure(call)  # fails here, loudly, on bad input
        self.controls = {
            param: w.Dropdown(options=stream_choices(name), value=name, description=param,
                              layout=w.Layout(width="170px"))
            for param, name in call.placement.names.items()
        }
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.button = w.Button(description="Run", icon="play", tooltip="measure this placement")
        self.button.on_click(lambda _: self._run_safely())
        self.status = w.HTML()
        self.table = w.HTML()
        self.timeline = Timeline(recording, window=window)
        self._record(recording)
        super().__init__(children=[w.HBox([*self.controls.values(), self.button]),
                                   self.status, self.timeline, self.table])
        self.add_class("unimem-explore")

    # -- running ----------------------------------------------------------
    def run(self, **placement: StreamLike) -> Recording:
        """Measure under ``placement`` (unnamed parameters keep their current stream).

        The dropdowns follow, without triggering a second run. Errors propagate. Only on
        the thread that made the widget (:class:`WrongThreadError` elsewhere): MLX's
        streams belong to their thread, so another thread would measure on others.
        """
        self._check_thread()
        try:
            call = self.call.with_placement(placement)  # ValueError for unknown parameters
            self.status.value = html.escape(f"running {call.placement.label} …")
            self.button.disabled = True  # reaches the browser while the kernel measures
            recording = self._measure(call)
        except Exception as exc:
            self.status.value = error_html(exc)
            raise
        finally:
            self.button.disabled = False
        names = call.placement.names
        self._quiet = True
        try:
            for param, name in names.items():
                control = self.controls[param]
                if name not in control.options:
                    control.options = [*control.options, name]
                control.value = name
        finally:
            self._quiet = False
        self.call = call
        self.timeline.show(recording)
        self._record(recording)
        return recording

    def _measure(self, call: Call) -> Recording:
        return profile_call(call, repeat=self.repeat, warmup=self.warmup, mode=self.mode,
                            trace=False)

    def _changed(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._run_safely()

    def _run_safely(self) -> None:
        """From a control: the error shows in the status line, not raised in a callback.

        On another thread than the widget's, the run is handed to the widget's thread
        (its event loop): measured there, it uses the same streams as every other run.
        """
        self._on_its_thread(self._run_placement, {p: c.value for p, c in self.controls.items()})

    def _run_placement(self, placement: dict[str, str]) -> None:
        if self.comm is None:  # closed meanwhile
            return
        with contextlib.suppress(Exception):  # run() has written it into the status line
            self.run(**placement)

    def close(self) -> None:
        """Close the widget and every widget in it, and let go of the recordings."""
        close_tree(self, super().close)
        self.results, self.latest = [], None

    def _record(self, recording: Recording) -> None:
        self.results.append(recording)  # each run adds a row, even a placement tried before
        self.latest = recording
        self.table.value = (f"<div class='unimem-results'><b>{html.escape(self.comparison.lines()[0])}"
                            f"</b>{html_table(self.comparison.table())}</div>")
        t = recording.timing
        assert t is not None
        self.status.value = html.escape(
            f"latest: {_placement_text(recording)}: {t.describe()}"
            + (f"; instrumented run {recording.overhead:.2f}× the plain median"
               if recording.overhead is not None else ""))

    # -- views ------------------------------------------------------------
    @property
    def comparison(self) -> Comparison:
        """Every run so far, in order (a placement tried again gets a row of its own)."""
        rows = [Row(f"#{i + 1}", rec) for i, rec in enumerate(self.results)]
        return Comparison(self.call.title, rows)

    def __repr__(self) -> str:
        params = ", ".join(self.controls) or "none"
        choices = ", ".join(stream_choices())
        tried = " | ".join(_placement_text(r) for r in self.results)
        latest = _placement_text(self.latest) if self.latest is not None else "none"
        return (f"Explore {self.call.title}: stream parameters {params} (choices: {choices}); "
                f"{plural(len(self.results), 'run')} so far: {tried}; latest {latest}\n"
                f"  {self.timeline!r}")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        data: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = repr(self)  # full text, not ipywidgets' 110-char cut
        return data


def _placement_text(rec: Recording) -> str:
    return fmt_placement(rec.placement) or "(no stream parameters)"


def explore(fun: Callable[..., Any], *args: Any, repeat: int = 10, warmup: int = 2,
            mode: str = AUTO, window: int = WINDOW, groups: str = "module",
            **kwargs: Any) -> Explore | ExploreGroups:
    """An interactive widget to place ``fun``'s ops on streams and compare the runs.

    Stream parameters are found as in ``um.profile`` (arguments given as MLX
    devices or streams, or as names "cpu", "gpu", "cpu:1"). A function with none
    (a training step, a model's forward pass) gets a control per group of its ops
    instead: by ``groups`` = "module" (of the ``mlx.nn`` model among its arguments),
    "op", "site" (line of code) or "region" (``um.region``). The first run happens
    now (``repeat`` plain runs and one instrumented run), so bad input raises here;
    later runs come from the controls or ``run``. Only timings and timelines are
    kept: what ``fun`` returns is discarded.
    """
    call = bind(fun, args, kwargs)
    if not call.placement.names:
        from .explore_groups import ExploreGroups
        from .placing.groups import find_model

        model = find_model(args, kwargs)
        if model is None and groups == "module":
            raise ArgumentValueError(
                f"{call.title} has no stream parameters and no mlx.nn model among its "
                "arguments: group its ops by groups='op', 'site' or 'region' instead")
        return ExploreGroups(fun, args, dict(kwargs), model, groups=groups, repeat=repeat,
                             warmup=warmup, mode=mode, window=window)
    for param, name in call.placement.names.items():
        try:
            parse_name(name)
        except ValueError:
            raise ArgumentValueError(
                f"explore shows each stream parameter as a choice of named streams, but "
                f"{param!r} is an unnamed stream ({name}): pass mx.cpu, mx.gpu or a name "
                "such as 'cpu:1' instead") from None
    return Explore(call, repeat=repeat, warmup=warmup, mode=mode, window=window)
