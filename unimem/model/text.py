"""Deterministic text for every repr: durations, sizes, shapes, counts and tables.

nbval compares notebook outputs as text, so everything a repr prints goes through
these few functions: times always with a unit (``fmt_time``: "12.34 ms", "56.7 µs",
"1.23 s"), bytes in binary units (``fmt_bytes``), and tables aligned the same way
in every view. The sanitiser can then replace exactly these forms.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from functools import cache
from typing import ClassVar


def fmt_time(seconds: float | None) -> str:
    """A duration with a unit (nbval sanitises exactly these); a negative difference keeps
    its sign and picks its unit by size, like a positive one."""
    if seconds is None:
        return "n/a"
    if abs(seconds) >= 1:
        return f"{seconds:.2f} s"
    if abs(seconds) >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_bytes(n: float) -> str:
    """A size in binary units: "512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB"."""
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@cache  # the recorder names the dtype of every output of every op
def fmt_dtype(dtype: object) -> str:
    """An MLX dtype without its module: "float32" for ``mx.float32``."""
    return str(dtype).removeprefix("mlx.core.")


def fmt_shape(shape: Sequence[int]) -> str:
    """A shape as text: "1024×512", or "scalar" for a 0-d array."""
    return "×".join(map(str, shape)) or "scalar"


def fmt_placement(placement: Mapping[str, str]) -> str:
    """A placement as text: "d1=gpu, d2=cpu" ("" when there are no stream parameters)."""
    return ", ".join(f"{k}={v}" for k, v in placement.items())


def plural(n: int, word: str) -> str:
    """A count with its noun: "1 lane", "3 lanes"."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def text_table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows of text as left-aligned columns, one line each (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


WIDTH = 100  # columns a report's lines are wrapped at


def prose(line: str, width: int = WIDTH) -> list[str]:
    """A line of prose (a note, a method) broken between words at ``width``, never
    inside one; continuations indented four spaces past it, so they read as part of
    it. Tables are never passed here: their columns must stay aligned."""
    if len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip())] + "    "
    return textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [line]


# JupyterLab styles output <pre> with word-break: break-all, which splits words at the
# edge of the page; the lines come wrapped between words already.
PRE_STYLE = "word-break: normal; overflow-wrap: normal; white-space: pre; overflow-x: auto"


def pre_html(text: str, css_class: str) -> str:
    """A text repr for Jupyter: the same lines, escaped, in a ``<pre>`` block."""
    return f"<pre class='{css_class}' style='{PRE_STYLE}'>{html.escape(text)}</pre>"


def html_table(rows: Sequence[Sequence[str]], css_class: str = "") -> str:
    """The same rows as an HTML table, every cell escaped (the first row is the header)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    attr = f" class='{css_class}'" if css_class else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


class TextRepr:
    """One text source for a report: ``lines()`` gives both ``repr()`` and Jupyter's HTML.

    As in Rich's Jupyter support, the HTML is the same text, escaped, in a
    ``<pre>`` block, so the plain text that nbval compares and the page a student
    reads cannot drift apart. A class gives its lines; this mixin does the rest.
    """

    _html_class: ClassVar[str] = "unimem-report"

    def lines(self) -> list[str]:
        """The report, one string per line, with no addresses and no wall-clock times."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return pre_html(repr(self), self._html_class)

