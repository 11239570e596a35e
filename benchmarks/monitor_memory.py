"""How much memory does a GradientMonitor's history take on a long run?

A 100-layer, 16-wide tanh MLP trains for 10,000 SGD steps (batch 32, random data) under a
monitor with the default options; the script reports the growth of the process's resident
memory (``/proc/self/statm``) over the run, less the same run without a monitor.

    python benchmarks/monitor_memory.py [--steps 10000] [--layers 100]
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import torch

from vgcourse.models import deep_mlp
from vgcourse.monitor import GradientMonitor
from vgcourse.training import task_loss


def resident_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(steps: int, layers: int, monitored: bool) -> tuple[float, float]:
    model = deep_mlp(16, 4, depth=layers, width=16, activation="tanh", init="xavier", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, 16, generator=gen), torch.randint(0, 4, (32,), generator=gen)) for _ in range(16)]
    gc.collect()
    start, began = resident_mb(), time.perf_counter()
    monitor = GradientMonitor(model) if monitored else None
    for step in range(steps):
        x, y = batches[step % len(batches)]
        optimizer.zero_grad()
        task_loss(model(x), y).backward()
        optimizer.step()
    if monitor is not None:
        monitor.close()  # hooks go; the records stay
    gc.collect()
    grown = resident_mb() - start
    del monitor
    return grown, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=100)
    args = parser.parse_args()
    plain, plain_seconds = run(args.steps, args.layers, monitored=False)
    watched, watched_seconds = run(args.steps, args.layers, monitored=True)
    print(f"torch {torch.__version__}; {args.layers} layers, {args.steps} steps")
    print(f"resident memory growth: {watched:.1f} MB monitored, {plain:.1f} MB plain: "
          f"the monitor's history ~{watched - plain:.1f} MB ({plain_seconds:.0f} s / {watched_seconds:.0f} s)")


if __name__ == "__main__":
    main()
