"""Argument checks shared by more than one front door: one rule and one wording each.

A front door (``um.watch``, ``Timeline``) checks its arguments before anything
runs, so a bad value fails where it was typed, not later inside a view.
"""

from __future__ import annotations


def check_window(window: object) -> int:
    """``window``, the most recent ops a timeline shows per recording: a positive int."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int (ops shown per recording), "
                         f"got {window!r}")
    return window
