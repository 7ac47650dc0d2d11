"""Data-parallel training of a small MLP, one rank per process (lesson 09).

Run under mlx.launch, e.g. `mlx.launch -n 2 --backend ring python data_parallel.py`,
or from a notebook with `um.launch`. Every rank starts from the same weights, trains
on its own shard of data, and averages its gradients with the others each step
(`nn.average_gradients`: one all-reduce). The first argument, if any, is how many
seconds rank 1 sleeps before step 2's evaluation: an injected straggler.
"""

import sys
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

import unimem as um

STEPS = 5
straggle = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0

group = mx.distributed.init()
rank = group.rank()
# the ring backend carries arrays over sockets from the host: every rank computes on its CPU
# (on NVIDIA GPUs, MLX's NCCL backend is the GPU version of this job)
mx.set_default_device(mx.cpu)
mx.random.seed(0)  # the same initial weights on every rank
model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 4))
optimizer = optim.SGD(learning_rate=0.1)
mx.random.seed(1 + rank)  # each rank its own shard of the data
x = mx.random.normal((512, 32))
y = mx.argmax(x[:, :4], axis=1)
mx.eval(model.parameters(), x, y)


def loss_fn(model, x, y):
    return nn.losses.cross_entropy(model(x), y, reduction="mean")


loss_and_grad = nn.value_and_grad(model, loss_fn)

with um.watch_rank():  # this rank's recording, tied to the other ranks' clocks
    for step in range(STEPS):
        loss, grads = loss_and_grad(model, x, y)
        grads = nn.average_gradients(grads)  # the all-reduce: every rank waits for all
        optimizer.update(model, grads)
        if rank == 1 and step == 2:
            time.sleep(straggle)  # rank 1 is late to step 2's all-reduce
        mx.eval(model.parameters(), optimizer.state, loss)
