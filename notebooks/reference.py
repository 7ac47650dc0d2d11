"""Reference numbers for the lessons: quoted from elsewhere, never measured here.

The numbers live in ``reference.json`` beside this file, the one source the lessons
and the README's table read (``tests/test_notebooks.py`` checks both against it).
Every number comes with its source: the machine, the MLX version, the date, the
command or page that produced it, and a link a reader can follow.

    import reference
    reference.value("fun.split", "h200")        # 0.02084 (seconds)
    reference.table("fun.all_gpu", "fun.split")  # a printable table with its sources
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = json.loads(Path(__file__).with_name("reference.json").read_text(encoding="utf-8"))
SOURCES: dict[str, dict[str, str]] = DATA["sources"]
NUMBERS: list[dict] = DATA["numbers"]
_SCALE = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "GB/s": 1e9, "TB/s": 1e12}


def entry(key: str, source: str) -> dict:
    """The data file's entry for one number of one source."""
    for n in NUMBERS:
        if n["key"] == key and n["source"] == source:
            return n
    raise KeyError(f"no reference number {key!r} from {source!r} in reference.json")


def value(key: str, source: str) -> float:
    """The number in SI units: seconds for times, bytes per second for bandwidths."""
    n = entry(key, source)
    return n["value"] * _SCALE[n["unit"]]


def text(key: str, source: str) -> str:
    """The number exactly as the source gives it, e.g. '2.8 ms'."""
    n = entry(key, source)
    return f"{n['value']:g} {n['unit']}"


class Table:
    """Quoted numbers, one row per key and one column per source, with the sources."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.sources = [s for s in SOURCES if any(n["source"] == s and n["key"] in keys
                                                   for n in NUMBERS)]

    def __repr__(self) -> str:
        labels = [f"[{i + 1}] {SOURCES[s]['label']}" for i, s in enumerate(self.sources)]
        what = {k: next(n["what"] for n in NUMBERS if n["key"] == k) for k in self.keys}
        width = max(len(w) for w in what.values())
        col = max(len(lab) for lab in labels)
        lines = ["Quoted for reference, not measured on this machine (notebooks/reference.json):",
                 "  " + " " * width + "".join(f"  {lab:>{col}}" for lab in labels)]
        for k in self.keys:
            cells = []
            for s in self.sources:
                try:
                    cells.append(text(k, s))
                except KeyError:
                    cells.append("-")
            lines.append(f"  {what[k]:<{width}}" + "".join(f"  {c:>{col}}" for c in cells))
        for i, s in enumerate(self.sources):
            src = SOURCES[s]
            lines.append(f"  [{i + 1}] {src['machine']}; MLX: {src['mlx']}; date: {src['date']}")
            lines.append(f"      from: {src['title']}, {src['link']}")
            lines.append(f"      command: {src['command']}")
            if "quote" in src:
                lines.append(f"      says: \"{src['quote']}\"")
            else:
                lines.append(f"      note: {src['note']}")
        return "\n".join(lines)


def table(*keys: str) -> Table:
    return Table(keys)
