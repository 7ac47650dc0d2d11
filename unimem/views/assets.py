"""Where the widgets' front-end files are: in the wheel, or in a source checkout."""

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
