"""A 2-rank job for tests/test_distributed.py: steps of work and an all-reduce each, then
rank 0 sends rank 1 a message; rank 1 sleeps 0.2 s before step 2's all-reduce (the
straggler); with FAIL set in the environment rank 1 raises instead; SYNC picks how
watch_rank ties the clocks."""

import os
import time

import mlx.core as mx

import unimem as um

g = mx.distributed.init()
mx.set_default_device(mx.cpu)  # ring backend: the ranks compute on their CPUs (native records)
x = mx.ones((4096,)) * (g.rank() + 1)
with um.watch_rank(sync=os.environ.get("SYNC", "auto")):
    for step in range(4):
        y = mx.exp(x) * 2
        mx.eval(y)
        if g.rank() == 1 and step == 2:
            if os.environ.get("FAIL"):
                raise RuntimeError("rank 1 failed on purpose")
            time.sleep(0.2)
        mx.eval(mx.distributed.all_sum(y))
    if g.rank() == 0:
        mx.eval(mx.distributed.send(y, 1))
    else:
        mx.eval(mx.distributed.recv_like(y, 0))
