"""Where the widgets' front-end files are, and the one ES module each widget loads.

anywidget loads exactly one ES module per widget, from a string, and there is no
bundler: ``esm`` joins ``widgets/shared.js`` (plain declarations: colours,
formatters, payload helpers) and the widget's own files into that string.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).parents[1]  # unimem/
_PLACES = (_PACKAGE / "_static", _PACKAGE.parent / "widgets")  # wheel, then source checkout


def asset(name: str) -> Path:
    """The path of ``widgets/<name>``; FileNotFoundError names the places looked in."""
    for place in _PLACES:
        path = place / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"widget asset {name!r} not found in {[str(p) for p in _PLACES]}")


def esm(*names: str) -> str:
    """The module text of a widget: shared.js, then ``widgets/<name>`` for each name.

    Files are joined in order into one module scope, so a later file uses what an
    earlier one declares; only the widget's own file may ``export`` (its default).
    """
    parts = [asset(name) for name in ("shared.js", *names)]
    return "\n".join(f"// ---- widgets/{p.name}\n{p.read_text(encoding='utf-8')}" for p in parts)
