import pytest

import unimem as um
from unimem.capture import native


def test_compare_two_placements(fun, ab):
    c = um.compare(fun, *ab, repeat=3, placements={
        "one stream": {"d1": "cpu", "d2": "cpu"}, "two streams": {"d1": "cpu", "d2": "cpu:1"}})
    assert c.labels == ["one stream", "two streams"]
    assert c.speedup("one stream") == 1.0
    assert c["two streams"].count("exp", lane="cpu:1") == 500
    assert c["one stream"].count("exp", lane="cpu") == 500
    # the same method profile picks: native where the probe is built
    expected = "native" if native.available() else "segment"
    assert {c[label].mode for label in c.labels} == {expected}
    assert c.fastest in c.labels
    text = repr(c)
    assert "speedup vs first" in text and "d2=cpu:1" in text


def test_compare_rejects_empty_and_unknown(fun, ab):
    with pytest.raises(ValueError, match="placements is empty"):
        um.compare(fun, *ab, placements={})
    with pytest.raises(ValueError, match="no parameter 'dx'"):
        um.compare(fun, *ab, placements={"a": {"d1": "cpu", "d2": "cpu", "dx": "cpu"}})
    with pytest.raises(KeyError):
        um.compare(fun, *ab, repeat=1, placements={"a": {"d1": "cpu", "d2": "cpu"}})["b"]
