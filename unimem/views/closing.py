"""Closing a widget and everything it holds.

ipywidgets keeps every widget in its registry (``Widget.widgets``) until it is
closed, and ``Widget.close`` closes that widget only: the ``Layout`` (and
``Style``) a DOM widget makes for itself, and a container's children, stay
registered, and so stay alive, for the life of the kernel. unimem's widgets close
what they made along with themselves, and drop the data they show (recordings,
payloads), so a closed widget still referenced somewhere (a ``traitlets.dlink``,
a list in a notebook) holds no recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

PARTS = ("layout", "style")  # widgets a DOM widget makes for itself unless given


def given_parts(kwargs: dict[str, Any]) -> frozenset[str]:
    """The parts (layout, style) the caller passed in: shared, so not ours to close."""
    return frozenset(p for p in PARTS if p in kwargs)


def held(widget: Any, given: Iterable[str] = ()) -> list[Any]:
    """The widgets ``widget`` holds: its children, then its own layout and style."""
    out = list(getattr(widget, "children", ()) or ())
    for name in PARTS:
        if name not in given and widget.has_trait(name):
            part = getattr(widget, name)
            if isinstance(part, w.Widget):
                out.append(part)
    return out


def close_tree(widget: Any, close_self: Callable[[], None], given: Iterable[str] = ()) -> None:
    """Close ``widget`` (with ``close_self``: its own ``close``'s base) and, depth first,
    every widget it holds. A widget with its own ``close`` (unimem's) closes its parts."""
    parts = held(widget, given)
    close_self()
    for part in parts:
        if part.comm is None:  # closed already (a part seen twice, or closed by hand)
            continue
        if type(part).close is w.Widget.close:  # a stock widget: close what it holds too
            close_tree(part, part.close)
        else:
            part.close()
