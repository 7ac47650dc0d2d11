"""The modes are one table: the code reads it and docs/measurement.md quotes it."""

from pathlib import Path

import mlx.core as mx
import pytest

import unimem as um
from unimem.model.modes import LIVE_MODES, MODES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "measurement.md"


def test_docs_quote_every_distortion_verbatim():
    text = DOCS.read_text(encoding="utf-8")
    for mode, info in MODES.items():
        assert info.distortion in text, f"docs/measurement.md does not quote {mode}'s distortion"


def test_live_modes_and_their_methods():
    assert LIVE_MODES == ("native", "op", "segment")
    assert not MODES["exclusive"].live
    w = um.watch(mode="segment", display=False, segment_size=7, segment_budget=0.5)
    assert w.recording.method == MODES["segment"].live_method.format(size=7, budget="500.00 ms")
    assert "up to 7 calls" in w.recording.method and "after 500.00 ms" in w.recording.method
    assert um.watch(mode="op", display=False).recording.method == MODES["op"].live_method
    with pytest.raises(ValueError, match="exclusive serialises every op"):
        um.watch(mode="exclusive")


@pytest.mark.parametrize("mode", list(MODES))
def test_a_profile_says_its_method_and_distortion(mode):
    with mx.stream(mx.cpu):  # native times CPU streams; elsewhere the default may be a GPU
        rec = um.profile(mx.exp, mx.ones(4), repeat=1, warmup=0, trace=False, mode=mode,
                         segment_size=9)
    assert rec.mode == mode
    assert rec.method == MODES[mode].method.format(size=9)
    assert f"distortion: {MODES[mode].distortion}" in rec.notes
