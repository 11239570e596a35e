"""What does checking a training claim over several seeds cost? Batched seeds vs one run each.

Measured 2026-12-02 (AVX512 CPU, 2 threads, 3 seeds, --repeats 1): the MLP set-ups 2.2-3.1x
faster than three runs one after another, the recurrent cells 1.9-2.0x.

Notebook claims about training outcomes are asserted over several seeds (issue 11). Training S
seeds one after another costs S runs. ``vgcourse.seeds.run_seeds`` stacks the seeds along a
leading dimension (``torch.baddbmm``, one ``F.batch_norm`` over S × width channels), so the
per-step Python and dispatch overhead — most of a step for these small networks on a CPU — is
paid once. This measures, for a few course set-ups, the wall-clock time of

- *one run*: ``experiments.run`` with a norms-only monitor (what a notebook did before);
- *S sequential*: S such runs;
- *run_seeds*: one batched call for the same S seeds.

and for notebook 08's recurrent set-up (adding problem, T = 25, 32 units, Adam, batches of 16,
``--rnn-epochs`` epochs) one ``training.train`` run vs ``vgcourse.sequence_seeds.run_sequence_seeds``,
which trains S seeds as one block-diagonal core of S × 32 units with PyTorch's fused kernels;
and with ``--grid``, notebook 10's learning-rate grid (``LR_GRID``: 0.03, 0.1, 0.3, 1): one ``run_seeds`` call
per lr vs one ``vgcourse.seeds.run_lr_grid`` call for all four lrs × S seeds.

    OMP_NUM_THREADS=2 python benchmarks/seed_batching.py [--seeds 3] [--repeats 3]

The first training in a process imports ``torch._dynamo`` (about 2 s, paid by every notebook
kernel once); a warm-up run absorbs it before anything is timed. Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from vgcourse.data import adding_problem, digits
from vgcourse.experiments import BASELINE, run
from vgcourse.models import CELLS, sequence_model
from vgcourse.monitor import NORMS_ONLY
from vgcourse.seeds import LR_GRID, run_lr_grid, run_seeds
from vgcourse.sequence_seeds import run_sequence_seeds
from vgcourse.training import train

SETUPS = {
    "baseline (sigmoid)": BASELINE,
    "ReLU + He": BASELINE.changed(activation="relu", init="he", lr=0.1),
    "batch norm": BASELINE.changed(batch_norm=True),
    "residual, 50 layers, 5 epochs": BASELINE.changed(depth=50, width=32, residual=True, epochs=5),
}


def _seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rnn-epochs", type=int, default=5)
    parser.add_argument("--grid", action="store_true", help="also time notebook 10's learning-rate grid")
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f}; {len(seeds)} seeds")
    run(BASELINE.changed(epochs=1), digits(seed=0), progress=False, options=NORMS_ONLY)  # warm-up: imports torch._dynamo
    print(f"{'set-up':<32}{'one run':>9}{'sequential':>12}{'run_seeds':>11}{'speed-up':>10}")
    for name, setup in SETUPS.items():
        data = {seed: digits(seed=seed) for seed in seeds}
        one = statistics.median(_seconds(lambda: run(setup, data[0], progress=False, options=NORMS_ONLY)) for _ in range(args.repeats))
        batched = statistics.median(_seconds(lambda: run_seeds(setup, seeds, progress=False)) for _ in range(args.repeats))
        sequential = one * len(seeds)  # each seed costs about one run
        print(f"{name:<32}{one:>8.2f}s{sequential:>11.2f}s{batched:>10.2f}s{sequential / batched:>9.1f}x")
    adding = adding_problem(25, n_train=1000, n_test=500, seed=0)
    budget = dict(epochs=args.rnn_epochs, lr=0.02, batch_size=16)
    for cell in CELLS:
        one = statistics.median(_seconds(lambda: train(
            sequence_model(2, 32, 1, cell=cell, seed=0), adding, optimizer="adam", progress=False, **budget))
            for _ in range(args.repeats))
        batched = statistics.median(_seconds(lambda: run_sequence_seeds(cell, adding, seeds, progress=False, **budget))
                                    for _ in range(args.repeats))
        sequential = one * len(seeds)
        name = f"{cell}, adding T=25, {args.rnn_epochs} epochs"
        print(f"{name:<32}{one:>8.2f}s{sequential:>11.2f}s{batched:>10.2f}s{sequential / batched:>9.1f}x")
    if args.grid:
        lrs = LR_GRID
        print(f"{'lr grid ' + str(lrs):<32}{'run_seeds per lr':>21}{'run_lr_grid':>13}{'speed-up':>10}")
        for name, setup in SETUPS.items():
            per_lr = statistics.median(_seconds(lambda: [run_seeds(setup.changed(lr=lr), seeds, progress=False) for lr in lrs])
                                       for _ in range(args.repeats))
            grid = statistics.median(_seconds(lambda: run_lr_grid(setup, lrs, seeds, progress=False)) for _ in range(args.repeats))
            print(f"{name:<32}{per_lr:>20.2f}s{grid:>12.2f}s{per_lr / grid:>9.1f}x")


if __name__ == "__main__":
    main()
