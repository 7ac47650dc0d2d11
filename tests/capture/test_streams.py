import threading

import mlx.core as mx
import pytest

from unimem.capture.streams import (
    GPUUnavailableError,
    Placement,
    StreamId,
    is_stream_like,
    name_of,
    parse_name,
    resolve,
    stream_id,
)


def test_names_parse_and_print():
    assert str(parse_name("cpu")) == "cpu"
    assert str(parse_name("cpu:0")) == "cpu"
    assert str(parse_name("gpu:2")) == "gpu:2"
    with pytest.raises(ValueError, match="not a stream name"):
        parse_name("tpu")


def test_stream_like_detection():
    assert is_stream_like(mx.cpu) and is_stream_like(mx.Device(mx.cpu))
    assert is_stream_like(mx.default_stream(mx.cpu)) and is_stream_like("cpu:1")
    assert not is_stream_like("hello") and not is_stream_like(3)


def test_cpu_is_default_stream_and_ordinals_are_new_streams():
    assert resolve("cpu") == mx.default_stream(mx.cpu)
    s1, s1_again, s2 = resolve("cpu:1"), resolve("cpu:1"), resolve("cpu:2")
    assert s1 == s1_again and s1 != s2 and s1 != mx.default_stream(mx.cpu)
    assert name_of(stream_id(s1)) == "cpu:1"


def test_streams_are_made_per_thread():
    mine = stream_id(resolve("cpu:1"))
    theirs: list[StreamId] = []
    t = threading.Thread(target=lambda: theirs.append(stream_id(resolve("cpu:1"))))
    t.start()
    t.join()
    assert theirs[0] != mine  # MLX streams are thread-bound, so each thread gets its own


@pytest.mark.skipif(mx.is_available(mx.gpu), reason="checks the CPU-only build's error")
def test_gpu_where_none_is_a_clear_error():
    for spec in ("gpu", mx.gpu, "gpu:1"):
        with pytest.raises(GPUUnavailableError, match="no(ne)? .*cpu:1"):
            resolve(spec)


def test_placement_compares_by_names():
    p = Placement.from_mapping({"d1": mx.cpu, "d2": "cpu:1"})
    assert p.names == {"d1": "cpu", "d2": "cpu:1"}
    assert p == Placement.from_mapping({"d1": "cpu", "d2": "cpu:1"})
    assert p.label == "d1=cpu, d2=cpu:1"
    with pytest.raises(TypeError):
        Placement.from_mapping({"d1": 3})
