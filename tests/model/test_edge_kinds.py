"""Edge kinds: one table in the model, read by the graph, the recorder and the views."""

from unimem.model.graph import (
    COLLECTIVE,
    CROSS_STREAM,
    DEVICE_SWITCH,
    EDGE_KINDS,
    EDGE_MEANINGS,
    FLOW_KINDS,
    GPU_WAIT,
    SAME_STREAM,
    UNTRACKED,
    StreamId,
    classify,
)
from unimem.model.recording import UNTRACKED_LANE, Lane, flow_kind


def test_one_meaning_per_kind_in_table_order():
    assert list(EDGE_MEANINGS) == list(EDGE_KINDS)
    assert EDGE_KINDS == (SAME_STREAM, CROSS_STREAM, DEVICE_SWITCH, UNTRACKED, COLLECTIVE,
                          GPU_WAIT)
    assert all(EDGE_MEANINGS[k] and "\n" not in EDGE_MEANINGS[k] for k in EDGE_KINDS)


def test_flow_kinds_are_the_fenced_ones_in_the_order_the_timeline_colours_them():
    assert FLOW_KINDS == (CROSS_STREAM, DEVICE_SWITCH, UNTRACKED, COLLECTIVE, GPU_WAIT)


def test_classify_and_flow_kind():
    cpu0, cpu1, gpu0 = StreamId("cpu", 0), StreamId("cpu", 1), StreamId("gpu", 0)
    assert classify(cpu0, cpu0) == SAME_STREAM
    assert classify(cpu0, cpu1) == CROSS_STREAM
    assert classify(cpu0, gpu0) == DEVICE_SWITCH
    cpu, cpu_1 = Lane(0, "cpu", "cpu", 0), Lane(1, "cpu:1", "cpu", 1)
    gpu, unseen = Lane(2, "gpu", "gpu", 0), Lane(3, UNTRACKED_LANE, "?", -1)
    assert flow_kind(cpu, cpu_1) == CROSS_STREAM
    assert flow_kind(gpu, cpu) == DEVICE_SWITCH
    assert flow_kind(unseen, gpu) == flow_kind(cpu, unseen) == UNTRACKED
