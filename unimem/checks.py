"""Argument checks for the public front doors: one rule and one wording each.

A front door (``um.profile``, ``um.compare``, ``um.watch``, ``Timeline``, ...)
checks its arguments before anything runs or is patched, so a bad value fails
where it was typed, not later inside MLX or a view. Every error names the
argument, what was given and what is accepted, and is an
:class:`~unimem.errors.ArgumentTypeError` (a ``TypeError``) or an
:class:`~unimem.errors.ArgumentValueError` (a ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .errors import ArgumentTypeError, ArgumentValueError
from .model.graph import Graph
from .model.recording import Recording


def given(value: object) -> str:
    """What was given, as an error shows it: the value and, where it helps, its type."""
    text = repr(value)
    if value is None or type(value) in (int, float):
        return text
    if len(text) > 60 or "\n" in text:
        return f"a {type(value).__name__}"
    return f"{text} ({type(value).__name__})"


def check_int(name: str, value: object, *, minimum: int, meaning: str) -> int:
    """An int (not a bool) of at least ``minimum``."""
    accepted = f"an int of at least {minimum} ({meaning})"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be {accepted}, got {given(value)}")
    if value < minimum:
        raise ArgumentValueError(f"{name} must be {accepted}, got {value!r}")
    return value


def check_number(name: str, value: object, *, meaning: str,
                 maximum: float = math.inf) -> float:
    """A finite real number (not a bool) above 0 and at most ``maximum``."""
    accepted = ("a finite number above 0" if maximum == math.inf
                else f"a number in (0, {maximum:g}]") + f" ({meaning})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be {accepted}, got {given(value)}")
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise ArgumentValueError(f"{name} must be {accepted}, got {value!r}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """True or False (not a truthy stand-in such as "yes" or 1)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {given(value)}")
    return value


def check_str(name: str, value: object, *, meaning: str) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str ({meaning}), got {given(value)}")
    return value


def check_window(window: object) -> int:
    """``window``, the most recent ops a timeline shows per recording: a positive int."""
    if isinstance(window, bool) or not isinstance(window, int):
        raise ArgumentTypeError(f"window must be a positive int (ops shown per recording), "
                                f"got {given(window)}")
    if window < 1:
        raise ArgumentValueError(f"window must be a positive int (ops shown per recording), "
                                 f"got {window!r}")
    return window


def check_placement(name: str, value: object) -> Mapping[str, object]:
    """One placement: a mapping of stream parameter -> stream (checked as streams later)."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{name} must be a mapping of stream parameter -> stream, e.g. "
            f"{{'d1': 'gpu', 'd2': 'cpu:1'}}, got {given(value)}")
    for param in value:
        if not isinstance(param, str):
            raise ArgumentTypeError(f"{name}: stream parameter names must be str, "
                                    f"got {given(param)}")
    return value


def check_placements(value: object) -> Mapping[str, Mapping[str, object]]:
    """``compare``'s placements: a non-empty mapping of label -> {param: stream}."""
    example = "{'all cpu': dict(d1='cpu', d2='cpu'), 'split': dict(d1='cpu', d2='cpu:1')}"
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"placements must be a mapping of label -> {{param: stream}}, "
                                f"e.g. {example}, got {given(value)}")
    if not value:
        raise ArgumentValueError(f"placements is empty: give at least one, e.g. {example}")
    for label, placement in value.items():
        if not isinstance(label, str):
            raise ArgumentTypeError(f"placements: each label must be a str, e.g. {example}, "
                                    f"got {given(label)}")
        if callable(getattr(placement, "wrap", None)):  # a plan of rules (um.place)
            continue
        if not isinstance(placement, Mapping):
            raise ArgumentTypeError(
                f"placements[{label!r}] must be a mapping of param -> stream, e.g. "
                f"{example}, or a plan (um.place), got {given(placement)}")
        check_placement(f"placements[{label!r}]", placement)
    return value


def check_recording(value: object, *, what: str) -> None:
    """A finished :class:`~unimem.model.recording.Recording` (what ``um.profile`` gives)."""
    if isinstance(value, Recording):
        return
    hint = (": a Graph (um.trace) has no timings; um.profile(fun, ...) records one"
            if isinstance(value, Graph) else
            " (from um.profile, um.watch or Recording.load)")
    raise ArgumentTypeError(f"{what} needs a Recording{hint}, got {given(value)}")
