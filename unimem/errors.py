"""unimem's errors: one root, each keeping the builtin base it always had.

``except unimem.UnimemError`` catches everything unimem raises on purpose; code
written against the builtin bases (``except ValueError``) keeps working.
"""

from __future__ import annotations


class UnimemError(Exception):
    """Raised by unimem when it cannot do what was asked, with the reason and a way out."""


class NoArraysError(UnimemError, ValueError):
    """The function returned nothing MLX could evaluate."""


class GPUUnavailableError(UnimemError, RuntimeError):
    """A GPU stream was asked for on an MLX build that has no GPU."""


class WrongThreadError(UnimemError, RuntimeError):
    """Work asked of a widget on another thread than the one that made it: MLX's streams
    belong to their thread ("cpu:1" on another thread is another stream), so it would
    measure somewhere else than the cell did."""


class ExportFormatError(UnimemError, RuntimeError):
    """MLX's export file did not have the layout this MLX version is known to write."""


class ArgumentTypeError(UnimemError, TypeError):
    """A public argument is of a type unimem does not take; the message names the
    argument, what was given and what is accepted."""


class ArgumentValueError(UnimemError, ValueError):
    """A public argument has the right type but a value outside what is accepted;
    the message names the argument, what was given and what is accepted."""


class TraceFormatError(UnimemError, ValueError):
    """A trace that breaks the Trace Event Format or unimem's layout of it.

    The message names the event (its index in ``traceEvents``) or the metadata
    entry, the field, the value given and what is accepted; ``event`` and
    ``field`` hold the first two (``event`` is None outside ``traceEvents``).
    """

    def __init__(self, message: str, *, event: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.event = event
        self.field = field
