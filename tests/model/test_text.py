"""The text helpers every repr shares: units, counts and tables."""

from __future__ import annotations

import mlx.core as mx

from unimem.model.text import (
    PRE_STYLE,
    TextRepr,
    fmt_bytes,
    fmt_dtype,
    fmt_placement,
    fmt_shape,
    fmt_time,
    html_table,
    plural,
    pre_html,
    prose,
    text_table,
)


def test_durations_always_carry_a_unit_chosen_by_size():
    assert fmt_time(None) == "n/a"
    assert fmt_time(5e-6) == "5.0 µs"
    assert fmt_time(0.01234) == "12.34 ms"
    assert fmt_time(1.234) == "1.23 s"
    assert fmt_time(-0.0166) == "-16.60 ms"  # a derived difference, sign kept


def test_sizes_shapes_dtypes_and_counts():
    assert [fmt_bytes(n) for n in (512, 1536, 12 * 2**20, 3 * 2**30)] == [
        "512 B", "1.5 KiB", "12.0 MiB", "3.0 GiB"]
    assert fmt_shape((1024, 512)) == "1024×512" and fmt_shape(()) == "scalar"
    assert fmt_dtype(mx.float32) == "float32"
    assert fmt_placement({"d1": "gpu", "d2": "cpu:1"}) == "d1=gpu, d2=cpu:1"
    assert fmt_placement({}) == ""
    assert (plural(1, "lane"), plural(0, "lane"), plural(3, "lane")) == (
        "1 lane", "0 lanes", "3 lanes")


def test_text_table_aligns_columns_and_trims_trailing_space():
    lines = text_table([["name", "bytes"], ["a", "4 B"], ["longer", ""]])
    assert lines == ["  name    bytes", "  a       4 B", "  longer"]


def test_html_escapes_every_cell_and_text():
    table = html_table([["<h>"], ["a&b"]], "unimem-x")
    assert table == ("<table class='unimem-x'><tr><th>&lt;h&gt;</th></tr>"
                     "<tr><td>a&amp;b</td></tr></table>")
    # words stay whole: JupyterLab's own <pre> style (word-break: break-all) is overridden
    assert pre_html("x < y", "unimem-y") == (
        f"<pre class='unimem-y' style='{PRE_STYLE}'>x &lt; y</pre>")
    assert "word-break: normal" in PRE_STYLE


def test_text_repr_gives_repr_and_html_from_one_source():
    class Report(TextRepr):
        _html_class = "unimem-test"

        def lines(self) -> list[str]:
            return ["Report <of> things", "  a & b"]

    r = Report()
    assert repr(r) == "Report <of> things\n  a & b"
    assert r._repr_html_() == (f"<pre class='unimem-test' style='{PRE_STYLE}'>"
                               "Report &lt;of&gt; things\n  a &amp; b</pre>")


def test_every_report_in_the_package_uses_the_one_protocol():
    """No class defines its own HTML repr beside TextRepr (widgets have their own display)."""
    import inspect

    import unimem as um

    reports = [obj for obj in vars(um).values()
               if inspect.isclass(obj) and "_repr_html_" in vars(obj)]
    assert reports == [], [r.__name__ for r in reports]


def test_prose_wraps_between_words_with_a_hanging_indent():
    line = "  note: " + " ".join(["primitive"] * 20) + " Copy_and_StopGradient_stay_unwrapped"
    lines = prose(line, width=60)
    assert len(lines) > 1 and all(len(x) <= 60 for x in lines)
    assert all(x.startswith("      ") for x in lines[1:])  # two past the note's indent + 4
    assert " ".join(x.strip() for x in lines) == line.strip()  # no word split or lost
    assert prose("  short", width=60) == ["  short"]
    long_word = "x" * 80
    assert prose(long_word, width=60) == [long_word]  # never broken inside a word
