"""um.explore: controls per stream parameter, runs, and the table of placements tried."""

from __future__ import annotations

import asyncio
import re
import threading

import ipywidgets as w
import mlx.core as mx
import pytest

import unimem as um
from unimem.capture.streams import gpu_available
from unimem.explorer import stream_choices
from unimem.profiler import resolve_mode


def rows(e: um.Explore) -> list[list[str]]:
    """The results table's cells, read back from its HTML."""
    html = e.table.value
    assert html.startswith("<div class='unimem-results'>")
    return [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", html)[1:]]


@pytest.fixture
def explored(fun, ab) -> um.Explore:
    a, b = ab
    return um.explore(fun, a, b, d1="cpu", d2=mx.cpu, repeat=1, warmup=0, mode="op")


def test_controls_and_first_run(explored):
    e = explored
    assert "unimem-explore" in e._dom_classes
    assert list(e.controls) == ["d1", "d2"]
    assert all(isinstance(c, w.Dropdown) for c in e.controls.values())
    assert list(e.controls["d1"].options) == stream_choices()
    assert ("gpu" in stream_choices()) == gpu_available()
    assert (e.controls["d1"].value, e.controls["d2"].value) == ("cpu", "cpu")
    assert e.button.description == "Run"
    assert e.timeline in e.children and e.table in e.children
    assert [r[:2] for r in rows(e)] == [["#1", "d1=cpu, d2=cpu"]]
    assert e.latest is not None and e.latest.placement == {"d1": "cpu", "d2": "cpu"}


def test_run_adds_a_row_and_moves_the_controls(explored):
    e = explored
    rec = e.run(d2="cpu:1")
    assert rec.placement == {"d1": "cpu", "d2": "cpu:1"}
    assert e.controls["d2"].value == "cpu:1"
    assert [r[:2] for r in rows(e)] == [["#1", "d1=cpu, d2=cpu"], ["#2", "d1=cpu, d2=cpu:1"]]
    assert rows(e)[0][4] == "1.00×" and rows(e)[1][4].endswith("×")
    assert [x["name"] for x in e.timeline._meta["lanes"]] == ["cpu", "cpu:1"]
    assert sum(1 for r in rows(e)) == len(e.results) == 2
    e.run(d2="cpu:1")  # the same placement again adds a row: row #2 keeps its run
    assert [r[:2] for r in rows(e)] == [["#1", "d1=cpu, d2=cpu"], ["#2", "d1=cpu, d2=cpu:1"],
                                        ["#3", "d1=cpu, d2=cpu:1"]]
    assert len(e.results) == 3 and e.results[1] is rec


def test_changing_a_control_reruns(explored):
    e = explored
    e.controls["d1"].value = "cpu:1"
    assert e.latest.placement == {"d1": "cpu:1", "d2": "cpu"}
    assert len(rows(e)) == 2
    assert e.timeline.recordings == [e.latest]


def test_text_is_deterministic(explored):
    e = explored
    e.run(d2="cpu:1")
    text = repr(e)
    assert text == (
        f"Explore docs_fun: stream parameters d1, d2 (choices: {', '.join(stream_choices())}); "
        "2 runs so far: d1=cpu, d2=cpu | d1=cpu, d2=cpu:1; latest d1=cpu, d2=cpu:1\n"
        "  Timeline: 2 lanes, 501 bars, 0 cross-stream flows; measured ends, derived starts; "
        "memory lane (active, cache, peak)")
    assert e._repr_mimebundle_()["text/plain"] == text


def test_bad_placements_raise_from_run(explored):
    e = explored
    with pytest.raises(ValueError, match="no stream parameter 'd3'"):
        e.run(d3="cpu")
    with pytest.raises(ValueError, match="not a stream name"):
        e.run(d1="tpu")
    assert "ValueError: " in e.status.value and "tpu" in e.status.value
    if not gpu_available():
        with pytest.raises(um.GPUUnavailableError, match="cpu:1"):
            e.run(d1="gpu")
        assert "GPUUnavailableError" in e.status.value
    assert len(rows(e)) == 1 and not e.button.disabled


def test_errors_from_a_control_show_in_the_widget(ab):
    a, b = ab

    def picky(a, b, d):
        if d != mx.default_stream(mx.cpu):
            raise RuntimeError("only the default stream, please")
        return mx.matmul(a, b, stream=d)

    e = um.explore(picky, a, b, d=mx.cpu, repeat=1, warmup=0)
    e.controls["d"].value = "cpu:1"
    assert "RuntimeError: only the default stream, please" in e.status.value
    assert len(rows(e)) == 1
    with pytest.raises(RuntimeError, match="only the default stream"):
        e.run(d="cpu:1")


def test_bad_input_to_explore(fun, ab):
    a, b = ab
    with pytest.raises(ValueError, match="unnamed stream"):
        um.explore(fun, a, b, d1="cpu", d2=mx.new_stream(mx.cpu), repeat=1)
    with pytest.raises(ValueError, match="repeat must be an int of at least 1"):
        um.explore(fun, a, b, d1="cpu", d2="cpu", repeat=0)

    def boom(a, d):
        raise KeyError("from the user's function")

    with pytest.raises(KeyError, match="from the user's function"):
        um.explore(boom, a, d="cpu", repeat=1)


@pytest.mark.skipif(not gpu_available(), reason="this MLX build has no GPU")
def test_gpu_placements_where_mlx_has_a_gpu(fun, ab):
    a, b = ab
    e = um.explore(fun, a, b, d1=mx.gpu, d2="cpu", repeat=1, warmup=0)
    assert "gpu" in e.controls["d1"].options and e.controls["d1"].value == "gpu"
    lanes = {x["name"]: x["device"] for x in e.timeline._meta["lanes"]}
    assert lanes["gpu"] == "gpu" and lanes["cpu"] == "cpu"
    e.run(d1="cpu", d2="gpu")
    assert [r[1] for r in rows(e)] == ["d1=gpu, d2=cpu", "d1=cpu, d2=gpu"]


def test_default_mode_is_profiles_default(fun, ab):
    import inspect

    a, b = ab
    e = um.explore(fun, a, b, d1="cpu", d2="cpu:1", repeat=1, warmup=0)
    default = inspect.signature(um.profile).parameters["mode"].default
    assert e.latest.mode == resolve_mode(default)


def lane_streams(rec: um.Recording) -> list[tuple[str, str, int]]:
    return [(lane.name, lane.device, lane.stream_index) for lane in rec.lanes]


def test_run_button_on_another_thread_measures_on_the_widgets_streams(fun, ab):
    """A click handled off the kernel's thread runs on the thread that made the widget
    (MLX streams, "cpu" and "cpu:1" alike, belong to their thread), and adds a row."""
    a, b = ab

    async def main() -> tuple[um.Explore, um.Recording]:
        e = um.explore(fun, a, b, d1="cpu", d2="cpu:1", repeat=1, warmup=0, mode="op")
        first = e.latest
        clicker = threading.Thread(target=e.button.click)
        clicker.start()
        await asyncio.to_thread(clicker.join)
        for _ in range(2000):  # the run was handed to this loop: let it happen
            if len(e.results) == 2:
                break
            await asyncio.sleep(0.01)
        return e, first

    e, first = asyncio.run(main())
    assert len(e.results) == 2, e.status.value
    second = e.results[1]
    assert second is e.latest and second is not first
    assert lane_streams(second) == lane_streams(first)
    assert [x[0] for x in lane_streams(first)] == ["cpu", "cpu:1"]
    assert [r[:2] for r in rows(e)] == [["#1", "d1=cpu, d2=cpu:1"], ["#2", "d1=cpu, d2=cpu:1"]]


def test_run_button_on_another_thread_without_a_loop_says_so(explored):
    e = explored
    clicker = threading.Thread(target=e.button.click)
    clicker.start()
    clicker.join()
    assert len(e.results) == 1  # nothing measured on the other thread's streams
    assert "another thread" in e.status.value and "unimem-error" in e.status.value


def test_run_on_another_thread_raises_instead_of_measuring_on_its_streams(explored):
    e = explored
    caught: list[BaseException] = []

    def other() -> None:
        try:
            e.run(d2="cpu:1")
        except BaseException as exc:  # noqa: BLE001 - handed back to the test's thread
            caught.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    (exc,) = caught
    assert isinstance(exc, um.WrongThreadError) and isinstance(exc, RuntimeError)
    assert "another thread than the one that made the widget" in str(exc)
    assert len(e.results) == 1  # nothing measured
