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


class ExportFormatError(UnimemError, RuntimeError):
    """MLX's export file did not have the layout this MLX version is known to write."""
