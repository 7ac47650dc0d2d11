"""Find a widget's ES module: inside a wheel (``unimem/_static``) or a source checkout.

The front-end sources live once, in the top-level ``widgets/`` folder; the wheel
copies them to ``unimem/_static`` (pyproject force-include), so both layouts work.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def asset(name: str) -> Path:
    """The path of ``widgets/<name>``; FileNotFoundError names both places looked in."""
    for folder in (_HERE / "_static", _HERE.parent / "widgets"):
        path = folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"widget asset {name!r} not found in {_HERE / '_static'} "
                            f"or {_HERE.parent / 'widgets'}")
