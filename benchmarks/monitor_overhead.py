"""How much does a GradientMonitor slow training down? Measured on a deep MLP, on the CPU.

Identical 20-layer, 256-wide ReLU MLPs (same seed, batch 256, plain SGD, same random batches)
train side by side: one plain, one under each monitor configuration below, one with the naive
per-parameter ``.norm().item()`` loop, and one logging every parameter's gradient norm to
TensorBoard at every step with histograms every 50 (``SummaryWriter``, into a temporary folder). Their steps are interleaved one by one
(plain, a, b, ..., plain, a, b, ...), so bursts of load from other processes or virtual machines
hit every configuration alike. The steps are cut into windows of 50 (one histogram step each
with ``hist_every=50``); a configuration's ratio in a window is its step time divided by the
plain model's, and the report gives the median over windows of

- the *median* step-time ratio: the typical step, and
- the *mean* step-time ratio: includes the histogram step's cost, spread over 50 steps.

    python benchmarks/monitor_overhead.py [--windows 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

import torch
from torch import nn

from vgcourse.models import deep_mlp
from vgcourse.monitor import EVERYTHING, NORMS_ONLY, GradientMonitor, MonitorOptions
from vgcourse.training import task_loss

WINDOW = 50
CONFIGS: dict[str, MonitorOptions | Callable[[nn.Module], object] | None] = {
    "plain loop (reference)": None,
    "(a) norms only": NORMS_ONLY,
    "(a') norms + update ratios": NORMS_ONLY.changed(update_ratios=True),
    "(b) (a') + histograms every 50": EVERYTHING.changed(activations=False, hist_every=50),
    "    (b) + activation stats (default)": EVERYTHING,
    "(c) naive .norm().item() per param": lambda model, step: [p.grad.norm().item() for p in model.parameters()],
    "(d) TensorBoard: norms, histograms/50": lambda model, step: _tensorboard(model, step),
}
TARGETS = {"(a) norms only": 1.05, "    (b) + activation stats (default)": 1.20}
_WRITER: list = []


def _tensorboard(model: nn.Module, step: int) -> None:
    """What a practitioner logs by hand: every parameter's gradient norm, histograms every 50."""
    if not _WRITER:
        from torch.utils.tensorboard import SummaryWriter

        _WRITER.append(SummaryWriter(tempfile.mkdtemp(prefix="monitor-overhead-")))
    writer = _WRITER[0]
    for name, p in model.named_parameters():
        writer.add_scalar(f"grad_norm/{name}", p.grad.norm(), step)
        if step % WINDOW == 0:
            writer.add_histogram(f"grad/{name}", p.grad, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10, help=f"windows of {WINDOW} steps each")
    args = parser.parse_args()
    if args.windows < 1:
        parser.error("--windows must be positive")

    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(256, 64, generator=gen), torch.randint(0, 10, (256,), generator=gen))
               for _ in range(8)]
    names = list(CONFIGS)
    models = {name: deep_mlp(64, 10, depth=20, width=256, activation="relu", init="he", seed=0)
              for name in names}
    optimizers = {name: torch.optim.SGD(models[name].parameters(), lr=1e-3) for name in names}
    monitors = [GradientMonitor(models[name], config) for name, config in CONFIGS.items()
                if isinstance(config, MonitorOptions)]
    seconds: dict[str, list[float]] = {name: [] for name in names}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.windows} windows of {WINDOW} steps per configuration")

    start = time.perf_counter()
    try:
        for step in range(-5, args.windows * WINDOW):  # 5 warm-up steps, not recorded
            x, y = batches[step % len(batches)]
            for name in names:
                model, opt, config = models[name], optimizers[name], CONFIGS[name]
                begin = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                task_loss(model(x), y).backward()
                if callable(config):
                    config(model, step)
                opt.step()
                if step >= 0:
                    seconds[name].append(time.perf_counter() - begin)
    finally:
        for monitor in monitors:
            monitor.close()
        for writer in _WRITER:
            writer.close()

    reference = seconds[names[0]]
    print(f"plain step: median {1e3 * statistics.median(reference):.1f} ms; "
          f"took {time.perf_counter() - start:.0f} s; every monitor saw {monitors[0].steps} steps")
    print("step-time ratio to the plain model, median over windows [min-max over windows]:")
    print(f"{'configuration':38s} {'median step':>20s} {'mean step':>20s}  target")
    for name in names[1:]:
        columns = []
        for summary in (statistics.median, statistics.fmean):
            ratios = [
                summary(seconds[name][w : w + WINDOW]) / summary(reference[w : w + WINDOW])
                for w in range(0, len(reference), WINDOW)
            ]
            columns.append((statistics.median(ratios), min(ratios), max(ratios)))
        target = ""
        if name in TARGETS:  # judged on the mean step, which counts the histogram steps
            target = f"<= {TARGETS[name]:.2f}x " + ("met" if columns[1][0] <= TARGETS[name] else "MISSED")
        cells = [f"{m:.3f}x [{lo:.2f}-{hi:.2f}]" for m, lo, hi in columns]
        print(f"{name:38s} {cells[0]:>20s} {cells[1]:>20s}  {target}")


if __name__ == "__main__":
    main()
