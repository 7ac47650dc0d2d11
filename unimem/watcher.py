"""Watch arbitrary MLX code live: ``with um.watch() as w: <training loop>``.

The block's MLX calls are recorded as they happen (segments handed to MLX as
they fill, an end stamped by a waiter per stream, in-flight ops with ``end``
None), memory is sampled on a timer, and the views are redrawn at most
``ui_hz`` times a second from a timer thread, never per op. The Recording
keeps every op; only the on-screen window is bounded. Ctrl-C stops cleanly:
pending work is handed off and drained, the recording is kept, the interrupt
re-raised. Nothing here holds the program's arrays: the recorder's maps shed
entries as arrays die, so a long loop costs only its recorded events.

A Watch builds no widget itself: it is given view factories (anything that
makes an object with ``refresh()``) and makes each view on first use, since
the data side needs none; ``um.watch`` gives it the Timeline and MemoryView.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, cast

import mlx.core as mx

from .capture import cuda_kernels, native
from .capture.evalpoints import EvalPoints
from .capture.intercept import Interceptor
from .capture.native_live import NativeRecorder
from .capture.recorder import Recorder
from .capture.sampler import MemorySampler
from .capture.streams import gpu_available
from .checks import check_bool, check_int, check_number, check_str, check_window
from .devices import platform
from .errors import ArgumentTypeError, ArgumentValueError
from .model.modes import LIVE_MODES, MODES, Mode
from .model.recording import Op, Recording
from .model.text import fmt_time, plural
from .model.timing import LiveStarts
from .views.memory import MemoryView
from .views.timeline import WINDOW, Timeline

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

class LiveView(Protocol):
    """What a Watch redraws: anything that re-reads its data on ``refresh()``."""

    def refresh(self) -> None: ...


ViewFactory = Callable[["Watch"], LiveView]  # makes a view of the watch (its recording, ...)


class Watch:
    """A live recording of a ``with`` block, the views it is given and (optionally) a registry.

    ``views`` maps a name to a factory, called with the Watch on the view's first
    use (:meth:`view`); the views made are redrawn live and, with ``display``,
    shown in a notebook.
    """

    def __init__(self, *, mode: str = "auto", window: int = WINDOW, ui_hz: float = 4.0,
                 memory: bool = True, display: bool = True, registry: Any = None,
                 title: str = "watch", segment_size: int = 50, segment_budget: float = 0.02,
                 memory_hz: float = 50.0, views: Mapping[str, ViewFactory] | None = None
                 ) -> None:
        if registry is not None and not callable(getattr(registry, "observe", None)):
            raise ArgumentTypeError("registry must be a unimem Registry (um.track()), got "
                            f"{type(registry).__name__}")
        check_str("mode", mode, meaning=f"'auto' or one of {LIVE_MODES}")
        check_window(window)
        check_number("ui_hz", ui_hz, maximum=60, meaning="redraws per second")
        check_bool("memory", memory)
        check_bool("display", display)
        check_str("title", title, meaning="the recording's name")
        check_int("segment_size", segment_size, minimum=1, meaning="MLX calls per hand-off")
        check_number("segment_budget", segment_budget, meaning="seconds a segment may wait")
        check_number("memory_hz", memory_hz, maximum=10_000, meaning="memory samples per second")
        mode = _live_mode(mode, registry)
        method = MODES[mode].live_method if mode in MODES else None
        if method is None:
            hint = (" (exclusive serialises every op; use um.profile for it)"
                    if mode in MODES else "")
            raise ArgumentValueError(f"watch mode must be 'auto' or one of {LIVE_MODES}, "
                                     f"got {mode!r}{hint}")
        self.recording = Recording(title, {}, "watch", method.format(
            size=segment_size, budget=fmt_time(segment_budget)))
        self.mode: Mode = mode
        self.window, self.ui_hz = window, ui_hz
        self.memory, self.display, self.registry = memory, display, registry
        self.state = "ready"  # ready -> watching -> stopped | interrupted | failed
        self._segments = (segment_size, segment_budget)
        self._recorder = self._new_recorder()  # replaced at __enter__: times start there
        self._memory_hz = memory_hz
        self._interceptor: Interceptor | None = None
        self._sampler: MemorySampler | None = None
        self._eval_points: EvalPoints | None = None
        self._released = False
        self._live = LiveStarts(self.recording)
        self._make: dict[str, ViewFactory] = dict(views or {})
        self._views: dict[str, LiveView] = {}
        self._stop_ui = threading.Event()
        self._ui_thread: threading.Thread | None = None
        self._t_enter = 0.0

    @property
    def t0(self) -> float:
        """``perf_counter()`` at the recording's time zero: its ops' times count from it."""
        return self._recorder.t0

    def _new_recorder(self) -> Recorder | NativeRecorder:
        if self.mode == "native":
            # GPU work is traced by CUPTI where it can be; elsewhere GPU primitives stay
            # unwrapped and the recording's notes say so
            return NativeRecorder(self.recording, gpu=cuda_kernels.available())
        size, budget = self._segments
        return Recorder(self.recording, self.mode, segment_size=size, segment_budget=budget,
                        sample_memory=False)

    # -- views (made on first use: the data side needs none) ---------------------
    def view(self, name: str) -> LiveView:
        """The view ``name``, made from its factory on first use, then redrawn live."""
        if name not in self._views:
            if name not in self._make:
                raise KeyError(f"this watch has no view {name!r}; it has {sorted(self._make)}")
            self._live.update()  # starts derived before the first draw
            self._views[name] = self._make[name](self)
            self._ensure_ui()
        return self._views[name]

    @property
    def timeline(self) -> Timeline:
        """The live Timeline from ``um.watch``: the last ``window`` ops, redrawn at most
        ``ui_hz``/s."""
        return cast(Timeline, self.view("timeline"))

    @property
    def memory_view(self) -> MemoryView | None:
        """The live MemoryView from ``um.watch`` (None without one: ``memory=False``)."""
        return cast(MemoryView, self.view("memory")) if "memory" in self._make else None

    def refresh(self) -> None:
        """Bring starts and the views made so far up to date (the UI timer calls this)."""
        if isinstance(self._recorder, NativeRecorder):
            self._recorder.flush()  # take in the records that have come in; never blocks
        self._live.update()
        for view in list(self._views.values()):
            view.refresh()

    # -- the block -----------------------------------------------------------------
    def __enter__(self) -> Self:
        if self.state != "ready":
            raise RuntimeError("a Watch runs once; start another with um.watch()")
        # Transactional: each patcher is stored before it patches (its undo then knows
        # every patch made so far), and any failure or interrupt up to the return,
        # the return line included, undoes everything (the with statement calls no
        # __exit__ when __enter__ raises).
        try:
            recorder = self._recorder = self._new_recorder()
            if isinstance(recorder, NativeRecorder):
                recorder.begin()  # (CUPTI too, on a GPU: _release stops it)
                # at each eval point, what is about to run is wrapped and walked first
                points = self._eval_points = EvalPoints(recorder.at_eval_point,
                                                        after=recorder.after_eval)
                points.patch()
            else:
                interceptor = self._interceptor = Interceptor(recorder)
                interceptor.__enter__()  # raises if a profile/watch is already observing
                if self.registry is not None:
                    recorder.on_op = self._observe
                # at each eval point, pending segments go first, or MLX would run them inside
                # the user's eval and their ends would be stamped late
                flush = recorder.flush
                points = self._eval_points = EvalPoints(lambda _arrays: flush())
                points.patch()
            if self.memory:
                self._sampler = MemorySampler(self.recording, self._recorder.t0,
                                              self._memory_hz)
                self._sampler.start()
            if self.display and _in_notebook():
                self._show()
            self.state = "watching"
            self._t_enter = perf_counter()
            if isinstance(recorder, NativeRecorder):
                recorder.enter()  # the host lane's first phase: the block's own code
            self._ensure_ui()
            return self
        except BaseException:  # nothing may stay patched or running after a failed start
            self.state = "failed"
            self._release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop recording; never swallows: Ctrl-C and errors reach the caller."""
        # Not a nested try: CPython 3.11 runs the line event of a try that opens a
        # try body before the outer handler covers it (an interrupt there escaped).
        try:
            if isinstance(self._recorder, NativeRecorder) and self.state == "watching":
                self._recorder.exit()  # before the stop's own work
            self._stop_ui_thread()
            self._recorder.flush()  # hand off what is pending so it is timed, not lost
            self._release()
        finally:
            # a second release finishes one an interrupt cut short (a no-op otherwise)
            self._release()
            interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
            # close() tightened ends and derived every start afresh: start the live
            # derivation over from those, so the last refresh agrees with them
            self._live = LiveStarts(self.recording)
            self.recording.wall = perf_counter() - self._t_enter
            self._finish_notes(interrupted, exc_type)
            self.state = ("interrupted" if interrupted else
                          "failed" if exc_type is not None else "stopped")
            self.refresh()

    def _stop_ui_thread(self) -> None:
        self._stop_ui.set()
        if self._ui_thread is not None:
            self._ui_thread.join()

    def _release(self) -> None:
        """Undo the set-up, in reverse: unpatch, wait for MLX, stop the threads.

        Idempotent and resumable: every step is (undo, release, close, stop may all
        be repeated), so calling it again finishes a release an interrupt cut short,
        and once it has run to the end it does nothing."""
        if self._released:
            return
        try:
            try:
                if self._eval_points is not None:
                    self._eval_points.undo()
            finally:
                if self._interceptor is not None:
                    self._interceptor.release()
        finally:
            try:
                self._stop_ui_thread()
            finally:
                try:
                    self._recorder.close()  # waits for every handed-off op: MLX drained
                finally:
                    if self._sampler is not None:
                        self._sampler.stop()
        self._released = True

    def _finish_notes(self, interrupted: bool, exc_type: type[BaseException] | None) -> None:
        rec = self.recording
        never = [op for op in rec.ops if op.end is None]
        for op in never:
            op.detail = "never handed to MLX (the block stopped first)"
        if interrupted:
            rec.notes.append("interrupted: recorded ops kept, handed-off work drained")
        elif exc_type is not None:
            rec.notes.append(f"the block raised {exc_type.__name__}; recorded ops kept")
        if never:
            rec.notes.append(f"{plural(len(never), 'op')} never handed to MLX, so without an end")
        if self._recorder.untimed_calls:
            rec.notes.append(f"{self._recorder.untimed_calls} calls ran inside "
                             "mx.grad/vmap/compile and were not timed on their own")

    # -- helpers -------------------------------------------------------------------
    def _observe(self, op: Op, outputs: Sequence[mx.array]) -> None:
        self.registry.observe(op.id, outputs)

    def _show(self) -> None:
        from IPython.display import display

        views = [self.view(name) for name in self._make]
        display(*views)  # type: ignore[no-untyped-call]  # IPython ships no type hints

    def _ensure_ui(self) -> None:
        """Start the redraw timer once there is a view to redraw and a block running."""
        if self._views and self.state == "watching" and self._ui_thread is None:
            self._ui_thread = threading.Thread(target=self._ui_loop, daemon=True,
                                               name="unimem-watch-ui")
            self._ui_thread.start()

    def _ui_loop(self) -> None:
        period, seen = 1.0 / self.ui_hz, (-1, -1)
        while not self._stop_ui.wait(period):
            rec = self.recording
            now = (len(rec.ops), len(rec.memory))
            if now == seen and self._live.settled == now[0]:
                continue
            seen = now
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a failing view must not stop the loop
                rec.notes.append(f"live view stopped updating: {type(exc).__name__}: {exc}")
                return

    def __repr__(self) -> str:
        rec = self.recording
        calls = sum(op.count for op in rec.ops)
        flight = sum(op.end is None for op in rec.ops)
        unit = "primitive" if self.mode == "native" else "MLX call"
        head = (f"Watch ({self.state}, {self.mode} mode): {plural(calls, unit)} on "
                f"{plural(len(rec.lanes), 'lane')}"
                + (f", {flight} in flight" if self.state == "watching" else ""))
        return head + "\n" + repr(rec)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _timeline(w: Watch) -> Timeline:
    return Timeline(w.recording, window=w.window)


def _memory_view(w: Watch) -> MemoryView:
    # a live recording names no platform: it is this one
    return MemoryView(w.recording, w.registry, backend=platform().backend)


def watch(*, mode: str = "auto", window: int = WINDOW, ui_hz: float = 4.0,
          memory: bool = True, display: bool = True, registry: Any = None,
          title: str = "watch", segment_size: int = 50, segment_budget: float = 0.02,
          memory_hz: float = 50.0) -> Watch:
    """Record every MLX call of a ``with`` block live, e.g. a training loop.

    ``w.recording`` keeps every op (mode "watch"); ``w.timeline`` shows the last
    ``window`` of them, redrawn at most ``ui_hz`` times a second; ``memory``
    samples MLX's allocator ``memory_hz`` times a second and adds ``w.memory_view``;
    ``registry`` (from ``um.track()``) is told which arrays each op made and shown
    there. ``display`` shows the widgets when run in a notebook. Ctrl-C keeps what
    was recorded. ``mode="auto"`` records natively (every primitive, C++-made ones
    included, on its real stream, both ends measured) where the native probe is built,
    GPU work can be timed (no GPU, or MLX's CUDA build with cupti-python: CUPTI then
    measures every kernel, copy, migration and synchronisation call, and each refresh
    draws what has come in) and no registry is asked for (it needs the arrays each op
    made, which the hand-off method sees); else ``segment``.
    """
    views: dict[str, ViewFactory] = {"timeline": _timeline}
    if memory:
        views["memory"] = _memory_view
    return Watch(mode=mode, window=window, ui_hz=ui_hz, memory=memory, display=display,
                 registry=registry, title=title, segment_size=segment_size,
                 segment_budget=segment_budget, memory_hz=memory_hz, views=views)


def _live_mode(mode: str, registry: Any) -> Mode:
    """``auto``: native where it can record everything this watch asks for, else segment."""
    if mode == "auto":
        gpu_timed = not gpu_available() or cuda_kernels.available()
        native_fits = native.available() and gpu_timed and registry is None
        return "native" if native_fits else "segment"
    if mode == "native":
        if not native.available():
            raise native.NativeUnavailableError(f"mode='native': {native.why_unavailable()}")
        if registry is not None:
            raise ArgumentValueError("a registry needs the arrays each op made, which only the "
                             "hand-off modes see: use mode='segment' with registry=")
    return mode  # type: ignore[return-value]  # checked against MODES by the caller
