"""A :func:`~vgcourse.norm_blocks.block_stack` set-up on several seeds, trained side by side with
Adam and an optional linear learning-rate warm-up.

As :mod:`vgcourse.seeds` does for the course MLP, the seeds' models are stacked along a leading
dimension (:class:`StackedBlocks`) so S seeds cost little more than one on a CPU. Each seed has
its own weights, data split and example order; Adam works element by element, so each seed's
run is the one it would have alone.

    runs = run_block_seeds(BlockSetup(placement="post", warmup_steps=30), seeds=(0, 1, 2))
    runs.test_accuracy()        # one final test accuracy per seed
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.data import Split, digits
from vgcourse.norm_blocks import PLACEMENTS, BlockStack, block_stack
from vgcourse.seeds import SEEDS, check_seeds
from vgcourse.training import check_budget
from vgcourse.validation import check_choice, check_int


@dataclass(frozen=True)
class BlockSetup:
    """A block stack and its training budget (Adam, a linear warm-up over ``warmup_steps``).

    The learning rate of step ``t`` is ``lr * lr_factor(t, warmup_steps, steps, decay)``: a linear
    rise over the first ``warmup_steps`` (none with 0), then, with ``decay``, a linear fall to zero
    at the end of training (:func:`lr_factor`).
    """

    placement: str = "post"
    depth: int = 12
    width: int = 64
    hidden: int = 128
    zero_branches: bool = False
    epochs: int = 4
    lr: float = 0.01
    batch_size: int = 64
    warmup_steps: int = 0
    decay: bool = True

    def __post_init__(self) -> None:
        check_choice(self.placement, "placement", PLACEMENTS)
        for name, minimum in (("depth", 1), ("width", 2), ("hidden", 1), ("warmup_steps", 0)):
            check_int(getattr(self, name), name, minimum=minimum)
        for name in ("zero_branches", "decay"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_budget(self.epochs, self.lr, self.batch_size, "adam")

    def changed(self, **changes: Any) -> BlockSetup:
        """A copy with ``changes`` applied; unknown field names are an error."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown setup field(s) {unknown}; choose from {[f.name for f in fields(self)]}")
        return replace(self, **changes)

    def build(self, data: Split, seed: int) -> BlockStack:
        """The untrained model for ``data`` with the weights of ``seed``."""
        return block_stack(data.n_features, data.n_classes, self.depth, self.width, self.hidden,
                           self.placement, self.zero_branches, seed)


def _stacked(tensors: list[Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).clone())


class StackedBlocks(nn.Module):
    """S :class:`~vgcourse.norm_blocks.BlockStack` s of one architecture, evaluated together.

    Input ``(S, batch, features)``, output ``(S, batch, classes)``: copy ``s`` computes what
    ``models[s]`` computes on ``x[s]`` (``tests/test_block_seeds.py`` checks it). Weights are
    stored transposed, ``(S, in, out)``, for ``torch.baddbmm``.
    """

    def __init__(self, models: list[BlockStack]) -> None:
        super().__init__()
        self.placement, self.depth = models[0].placement, len(models[0].blocks)
        self.params = nn.ParameterDict()
        linears = {"embed": [m.embed for m in models], "head": [m.head for m in models]}
        norms = {"final": [m.final for m in models]} if self.placement == "pre" else {}
        for i in range(self.depth):
            blocks = [m.blocks[i] for m in models]
            linears[f"linear1_{i}"] = [b.linear1 for b in blocks]
            linears[f"linear2_{i}"] = [b.linear2 for b in blocks]
            if self.placement != "none":
                norms[f"norm_{i}"] = [b.norm for b in blocks]
        for name, modules in linears.items():
            self.params[f"{name}_w"] = _stacked([m.weight.t() for m in modules])
            self.params[f"{name}_b"] = _stacked([m.bias.unsqueeze(0) for m in modules])
        for name, modules in norms.items():
            self.params[f"{name}_w"] = _stacked([m.weight.unsqueeze(0) for m in modules])
            self.params[f"{name}_b"] = _stacked([m.bias.unsqueeze(0) for m in modules])
        self.eps = {name: modules[0].eps for name, modules in norms.items()}

    def _linear(self, name: str, h: Tensor) -> Tensor:
        return torch.baddbmm(self.params[f"{name}_b"], h, self.params[f"{name}_w"])

    def _norm(self, name: str, h: Tensor) -> Tensor:
        normed = F.layer_norm(h, h.shape[-1:], eps=self.eps[name])
        return normed * self.params[f"{name}_w"] + self.params[f"{name}_b"]

    def forward(self, x: Tensor) -> Tensor:
        h = self._linear("embed", x)
        for i in range(self.depth):
            inner = self._norm(f"norm_{i}", h) if self.placement == "pre" else h
            branch = self._linear(f"linear2_{i}", F.relu(self._linear(f"linear1_{i}", inner)))
            h = self._norm(f"norm_{i}", h + branch) if self.placement == "post" else h + branch
        if self.placement == "pre":
            h = self._norm("final", h)
        return self._linear("head", h)


@dataclass
class BlockSeedRuns:
    """One :class:`BlockSetup` trained once per seed.

    Attributes:
        setup: what was trained.
        seeds: the seeds, in the order of every per-seed array.
        step_loss: ``(seeds, steps)`` training loss of every step's batch, before its update;
            NaN from the step where a seed's loss stopped being finite.
        test_accuracies: ``(seeds,)`` final test accuracy; 0 for a seed that diverged.
        diverged_at: per seed, the first step whose loss was not finite, or ``None``.
        seconds: wall-clock time of the training.
    """

    setup: BlockSetup
    seeds: tuple[int, ...]
    step_loss: np.ndarray
    test_accuracies: np.ndarray
    diverged_at: list[int | None]
    seconds: float

    def test_accuracy(self) -> np.ndarray:
        """Each seed's final test accuracy (0 for a diverged seed)."""
        return self.test_accuracies

    def describe_accuracy(self) -> str:
        """``"median 95.1 %, worst 94.4 % (seeds 0, 1, 2)"``, plus how many diverged, if any."""
        acc = self.test_accuracies
        text = f"median {np.median(acc):.1%}, worst {acc.min():.1%} (seeds {', '.join(map(str, self.seeds))})"
        diverged = sum(d is not None for d in self.diverged_at)
        return text + (f"; {diverged} diverged" if diverged else "")


def _splits(data_for: Callable[[int], Split], seeds: tuple[int, ...]) -> tuple[list[Split], list[Tensor]]:
    splits = [data_for(seed=seed) for seed in seeds]
    for split in splits:
        if not isinstance(split, Split) or split.n_classes is None:
            raise ValueError("data_for must return a vgcourse.data.Split of a classification task")
    if len({(s.x_train.shape, s.x_test.shape) for s in splits}) != 1:
        raise ValueError("every seed's data must have the same shapes to be trained together")
    return splits, [torch.stack([getattr(s, name) for s in splits]) for name in ("x_train", "y_train", "x_test", "y_test")]


def lr_factor(step: int, warmup_steps: int, steps: int, decay: bool = True) -> float:
    """The learning rate of ``step`` (0 to ``steps - 1``) as a fraction of the peak: rising linearly
    over the first ``warmup_steps`` (``(step + 1) / warmup_steps``), then constant, or with ``decay``
    falling linearly to ``1 / (steps - warmup_steps)`` at the last step.

    Raises:
        ValueError: unless ``0 <= step < steps`` and ``0 <= warmup_steps < steps``.
    """
    check_int(steps, "steps", minimum=1)
    check_int(step, "step", minimum=0, maximum=steps - 1)
    check_int(warmup_steps, "warmup_steps", minimum=0)
    if warmup_steps >= steps:
        raise ValueError(f"warmup_steps must be fewer than the {steps} training steps, got {warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return (steps - step) / (steps - warmup_steps) if decay else 1.0


def _per_seed_loss(output: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(output.transpose(1, 2), target, reduction="none").mean(1)


def run_block_seeds(
    setup: BlockSetup,
    seeds: tuple[int, ...] = SEEDS,
    data_for: Callable[[int], Split] = digits,
) -> BlockSeedRuns:
    """Train the block stack ``setup`` describes once for every seed in ``seeds``, side by side.

    Args:
        setup: the model and budget (Adam at ``setup.lr``, warmed up over ``setup.warmup_steps``).
        seeds: distinct non-negative integers; each decides the weights, the data split
            (``data_for(seed=seed)``) and the order of examples.
        data_for: called as ``data_for(seed=seed)``; default the digits, ``vgcourse.data.digits``.

    Returns:
        a :class:`BlockSeedRuns`.
    """
    if not isinstance(setup, BlockSetup):
        raise TypeError(f"setup must be a vgcourse.block_seeds.BlockSetup, got {type(setup).__name__}")
    if not callable(data_for):
        raise TypeError(f"data_for must be a function seed -> vgcourse.data.Split, got {type(data_for).__name__}")
    seeds = check_seeds(seeds)
    splits, (x_train, y_train, x_test, y_test) = _splits(data_for, seeds)
    steps = setup.epochs * math.ceil(x_train.shape[1] / setup.batch_size)
    lr_factor(0, setup.warmup_steps, steps, setup.decay)  # the warm-up must end before training does
    stack = StackedBlocks([setup.build(split, seed) for split, seed in zip(splits, seeds)])
    optimizer = torch.optim.Adam(stack.parameters(), lr=setup.lr, fused=True)  # fused: one kernel per step
    schedule = torch.optim.lr_scheduler.LambdaLR(
        # LambdaLR also asks for step ``steps``, after the last update: that rate is never used
        optimizer, lambda t: lr_factor(min(t, steps - 1), setup.warmup_steps, steps, setup.decay))
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    n, features = x_train.shape[1], x_train.shape[2]
    rows: list[Tensor] = []
    start_time = time.perf_counter()
    for _ in range(setup.epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])
        for start in range(0, n, setup.batch_size):
            idx = order[:, start:start + setup.batch_size]
            xb = torch.gather(x_train, 1, idx.unsqueeze(-1).expand(-1, -1, features))
            losses = _per_seed_loss(stack(xb), torch.gather(y_train, 1, idx))
            rows.append(losses.detach())
            optimizer.zero_grad(set_to_none=True)
            # a seed whose loss is not finite gets no gradient: its NaNs stay in its own slice
            torch.where(torch.isfinite(losses), losses, 0.0).sum().backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start_time
    step_loss = torch.stack(rows, dim=1).double().numpy()
    with torch.no_grad():
        out = stack(x_test)
        accuracy = (out.argmax(-1) == y_test).double().mean(1).numpy()
    diverged_at: list[int | None] = []
    for s in range(len(seeds)):
        bad = np.flatnonzero(~np.isfinite(step_loss[s]))
        diverged_at.append(int(bad[0]) if bad.size else None)
        if bad.size:
            step_loss[s, bad[0]:] = math.nan
            accuracy[s] = 0.0
    return BlockSeedRuns(setup, seeds, step_loss, accuracy, diverged_at, seconds)
