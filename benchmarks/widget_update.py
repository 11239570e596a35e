"""How long does an explorer take to redraw after a control changes? Measured on the CPU.

An update is everything ``Explorer.update`` does: compute the data, redraw the Figure in
place, render it to PNG and fill in the readout. The gradient-flow explorer's target is under
0.5 s per update on a 2-core CPU, with its cache cleared (a setting never seen before: a fresh
network, one forward and backward pass). Each line reports the median and the slowest of
``--repeats`` updates, and for the gradient-flow explorer the median of each part:

- *norms*: build the ``deep_mlp`` and measure its per-layer gradient norms (uncached);
- *redraw*: put them into the existing Figure (``show_gradient_norms``, norms cached);
- *png*: render it (``figure_png``), what the browser receives;
- *new fig*: for comparison, what a brand-new Figure would cost instead of redraw + png
  (``gradient_norms_figure`` + ``figure_png``): the reason the explorers redraw in place.

Run it with one torch thread, as the notebooks' kernels on a shared 2-core machine are:

    OMP_NUM_THREADS=1 python benchmarks/widget_update.py [--repeats 5]

Every number is given twice: wall-clock time, and the CPU time this process used (what the
update costs when a core is free for it). On a machine shared with other work the two differ,
so the load average is printed too; the target is judged on the wall-clock median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import torch

from vgcourse.data import digits
from vgcourse.experiments import BASELINE, run
from vgcourse.monitor import DIAGNOSIS
from vgcourse.widgets import (
    derivative_explorer,
    figure_png,
    fix_explorer,
    gradient_flow_explorer,
    gradient_flow_norms,
    gradient_norms_figure,
    show_gradient_norms,
)
from vgcourse.widgets import gradient_flow

TARGET = 0.5
DEPTHS = (5, 10, 20, 30, 50)
SETTINGS = {
    "sigmoid, default init": {"activation": "sigmoid", "init": "default", "batch_norm": False, "residual": False},
    "relu, he, batch norm, residual": {"activation": "relu", "init": "he", "batch_norm": True, "residual": True},
}


@dataclass
class Timing:
    """Wall-clock and CPU seconds of repeated calls."""

    wall: list[float]
    cpu: list[float]

    def median(self) -> float:
        return statistics.median(self.wall)

    def __str__(self) -> str:
        return (f"median {1e3 * self.median():5.0f} ms, slowest {1e3 * max(self.wall):5.0f} ms "
                f"(CPU median {1e3 * statistics.median(self.cpu):4.0f} ms)")


def timed(action: Callable[[], object], repeats: int, before: Callable[[], object] = lambda: None) -> Timing:
    timing = Timing([], [])
    for _ in range(repeats):
        before()
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        timing.wall.append(time.perf_counter() - start)
        timing.cpu.append(time.process_time() - start_cpu)
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="updates timed per line")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} at the start")

    explorer = gradient_flow_explorer()  # warms up torch, the data set and matplotlib's fonts
    clear = gradient_flow._norms.cache_clear
    print(f"\ngradient-flow explorer, one update with the cache cleared (target < {TARGET} s):")
    worst = 0.0
    for label, setting in SETTINGS.items():
        for depth in DEPTHS:
            for name, value in {"depth": depth, **setting}.items():
                explorer.controls[name].value = value
            total = timed(explorer.update, args.repeats, before=clear)
            norms = timed(lambda: gradient_flow_norms(depth, **setting), args.repeats, before=clear)
            redraw = timed(lambda: show_gradient_norms(explorer.figures[0], depth, **setting), args.repeats)
            png = timed(lambda: figure_png(explorer.figures[0]), args.repeats)
            fresh = timed(lambda: figure_png(gradient_norms_figure(depth, **setting)), args.repeats)
            worst = max(worst, total.median())
            parts = "  ".join(f"{part} {1e3 * t.median():4.0f}" for part, t in
                              (("norms", norms), ("redraw", redraw), ("png", png), ("new fig", fresh)))
            print(f"  {label:31s} depth {depth:2d}: {total}  [{parts} ms]")
        cached = timed(explorer.update, args.repeats)
        print(f"  {label:31s} depth {depth:2d}, cached (a setting seen before): {cached}")
    print(f"  slowest median update {worst:.2f} s: target < {TARGET} s " + ("met" if worst < TARGET else "MISSED"))

    derivative = derivative_explorer()
    xs = iter([0.5 * i for i in range(-12, 13)] * args.repeats)
    moves = timed(lambda: setattr(derivative.controls["x"], "value", next(xs)), args.repeats)
    print(f"\nderivative explorer, moving x: {moves}")

    data = digits(seed=0)
    quick = {"baseline": BASELINE.changed(epochs=2),
             "relu + he": BASELINE.changed(epochs=2, activation="relu", init="he"),
             "residual": BASELINE.changed(epochs=2, residual=True)}
    runs = {label: run(setup, data, progress=False, options=DIAGNOSIS) for label, setup in quick.items()}
    fixes = fix_explorer(runs)
    box = fixes.controls["residual"]
    toggles = timed(lambda: setattr(box, "value", not box.value), args.repeats)
    print(f"fix explorer (2 figures), ticking a box: {toggles}")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
