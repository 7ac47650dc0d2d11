"""Shared fixtures: the MLX docs' example at a size that runs fast on 2 CPU cores."""

from __future__ import annotations

import importlib.util

import mlx.core as mx
import pytest


def docs_fun(a: mx.array, b: mx.array, d1, d2):
    """The function from MLX's unified-memory page."""
    x = mx.matmul(a, b, stream=d1)
    for _ in range(500):
        b = mx.exp(b, stream=d2)
    return x, b


@pytest.fixture
def fun():
    return docs_fun


@pytest.fixture
def ab() -> tuple[mx.array, mx.array]:
    a = mx.random.uniform(shape=(512, 128))
    b = mx.random.uniform(shape=(128, 4))
    mx.eval(a, b)
    return a, b


# The browser tests drive Chromium through Playwright; the rest of the suite must not
# need it (`pytest tests -m "not browser"` on a machine without Playwright).
if importlib.util.find_spec("playwright") is None:
    collect_ignore = ["browser"]
