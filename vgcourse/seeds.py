"""One set-up, several seeds, trained side by side as one batched computation.

A claim about a training outcome ("ReLU + He reaches 90 %") is a claim about a set-up, not about
one seed: float rounding differs between CPUs and thread counts, and a run near the edge of
stability amplifies it. ``run_seeds`` trains the ``DeepMLP`` that a :class:`Setup` describes once
per seed — each with its own weights, data split and example order, exactly as
``experiments.run(setup.changed(seed=s))`` would — but stacks the seeds along a leading
dimension, so S seeds cost little more than one on a CPU (``benchmarks/seed_batching.py``).

    result = run_seeds(BASELINE.changed(activation="relu", init="he", lr=0.1))
    result.test_accuracy()        # array, one final test accuracy per seed
    result.describe_accuracy()    # "median 95.1 %, worst 94.4 % (seeds 0, 1, 2)"

A seed whose loss becomes NaN or infinite is a result, not a crash: it stops there
(``History.diverged_at``) while the other seeds train on.

``run_lr_grid`` trains one SGD set-up at several learning rates on the same seeds, every
(lr, seed) pair in the same stack: the fair way to compare set-ups, each at its best lr.

With ``clip_norm`` every seed's gradient is clipped before each step. Gradient norms are recorded
*before* clipping, as ``GradientMonitor`` records them: ``grad_norms()`` is what the network
produced, ``clipped_grad_norms()`` what the optimizer step used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.data import Split, digits
from vgcourse.diagnosis import first_last_ratio
from vgcourse.experiments import Setup, build_model
from vgcourse.models import DeepMLP, layer_names, linear_layers
from vgcourse.training import History, check_budget, default_device, epoch_bar, subnormals_flushed
from vgcourse.validation import is_int, is_real

SEEDS = (0, 1, 2)
"""The seeds a training claim is checked over unless a notebook says otherwise."""

LR_GRID = (0.03, 0.1, 0.3, 1.0)
"""The learning rates :func:`run_lr_grid` tries unless told otherwise: a factor of about 3 apart."""


def _distinct_values(values: object, name: str, one: str, kind: str, valid: Callable[[object], bool]) -> tuple:
    """``values`` as a non-empty tuple of distinct items that are ``valid``, or a ``ValueError``
    that names the argument (``name``), one item (``one``) and what each must be (``kind``)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a sequence of {kind}s, got {values!r}")
    items = tuple(values)
    if not items:
        raise ValueError(f"{name} must name at least one {one}, got an empty sequence")
    for item in items:
        if not valid(item):
            raise ValueError(f"every {one} must be a {kind}, got {item!r} in {items!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"{name} must be distinct, got {items!r}")
    return items


def check_seeds(seeds: object) -> tuple[int, ...]:
    """``seeds`` as a tuple of distinct non-negative integers, or a ``ValueError`` saying why not."""
    return _distinct_values(seeds, "seeds", "seed", "non-negative integer", lambda seed: is_int(seed) and seed >= 0)


class StackedMLP(nn.Module):
    """S copies of one :class:`~vgcourse.models.DeepMLP` architecture, evaluated together.

    Input ``(S, batch, features)``, output ``(S, batch, outputs)``: copy ``s`` computes exactly
    what ``models[s]`` computes on ``x[s]`` (``tests/test_seeds.py`` checks it, in train and eval
    mode, with batch norm and residual layers). Weights are stored transposed, ``(S, in, out)``,
    for ``torch.baddbmm``; batch norm runs as one ``F.batch_norm`` over S × width channels.
    """

    def __init__(self, models: list[DeepMLP]) -> None:
        super().__init__()
        first = models[0]
        layers = list(first)
        self.depth, self.residual = len(layers), [getattr(layer, "residual", False) for layer in layers]
        self.act = layers[0].act if self.depth > 1 else nn.Identity()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self.gammas, self.betas = nn.ParameterList(), nn.ParameterList()
        self.norms: list[nn.BatchNorm1d | None] = []
        per_model = [linear_layers(model) for model in models]
        for i in range(self.depth):
            linears = [layers_of[i] for layers_of in per_model]
            self.weights.append(nn.Parameter(torch.stack([lin.weight.detach().t() for lin in linears]).contiguous()))
            self.biases.append(nn.Parameter(torch.stack([lin.bias.detach() for lin in linears]).unsqueeze(1).clone()))
            norm = getattr(layers[i], "norm", None)
            if isinstance(norm, nn.BatchNorm1d):
                norms = [model[i].norm for model in models]
                self.gammas.append(nn.Parameter(torch.stack([n.weight.detach() for n in norms]).clone()))
                self.betas.append(nn.Parameter(torch.stack([n.bias.detach() for n in norms]).clone()))
                self.register_buffer(f"running_mean{i}", torch.stack([n.running_mean for n in norms]).clone())
                self.register_buffer(f"running_var{i}", torch.stack([n.running_var for n in norms]).clone())
                self.norms.append(norm)
            else:
                self.norms.append(None)

    def forward(self, x: Tensor) -> Tensor:
        h, norm_index = x, 0
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(bias, h, weight)
            if i == self.depth - 1:
                return z
            norm = self.norms[i]
            if norm is not None:
                z = self._batch_norm(z, i, norm, norm_index)
                norm_index += 1
            out = self.act(z)
            h = h + out if self.residual[i] else out
        return h

    def _batch_norm(self, z: Tensor, i: int, norm: nn.BatchNorm1d, index: int) -> Tensor:
        seeds, batch, width = z.shape
        channels = z.transpose(0, 1).reshape(batch, seeds * width)  # one channel per (seed, unit)
        out = F.batch_norm(
            channels, getattr(self, f"running_mean{i}").view(-1), getattr(self, f"running_var{i}").view(-1),
            self.gammas[index].view(-1), self.betas[index].view(-1), self.training, norm.momentum, norm.eps,
        )
        return out.reshape(batch, seeds, width).transpose(0, 1)

    @torch.no_grad()
    def copy_into(self, models: list[DeepMLP], steps: int) -> None:
        """Write copy ``s``'s weights (and batch-norm statistics) into ``models[s]``, which counts
        ``steps`` more training batches (``num_batches_tracked``)."""
        for s, model in enumerate(models):
            norm_index = 0
            for i, linear in enumerate(linear_layers(model)):
                linear.weight.copy_(self.weights[i][s].t())
                linear.bias.copy_(self.biases[i][s, 0])
                if self.norms[i] is not None:
                    norm = model[i].norm
                    norm.weight.copy_(self.gammas[norm_index][s])
                    norm.bias.copy_(self.betas[norm_index][s])
                    norm.running_mean.copy_(getattr(self, f"running_mean{i}")[s])
                    norm.running_var.copy_(getattr(self, f"running_var{i}")[s])
                    norm.num_batches_tracked.add_(steps)
                    norm_index += 1


@dataclass
class SeedRun:
    """One seed's share of a :func:`run_seeds` result."""

    setup: Setup
    model: DeepMLP
    history: History
    norms: np.ndarray  # (steps, layers): float64 weight-gradient norms before clipping, as GradientMonitor.grad_norms
    clip_norms: np.ndarray  # (steps,): total gradient norm before clipping (empty without clipping)
    layer_names: list[str]
    clip_norm: float | None = None  # the clipping threshold, None when the run did not clip

    @property
    def diverged(self) -> bool:
        """Whether this seed's loss became NaN or infinite (training stopped there)."""
        return self.history.diverged

    def grad_norms(self) -> np.ndarray:
        """Each layer's weight-gradient norm at every step, ``(steps, layers)``, layer 1 first,
        measured after backward and **before** clipping (what the network produced)."""
        return self.norms

    def clip_factors(self) -> np.ndarray:
        """The factor clipping multiplied every gradient by at each step, ``(steps,)``:
        ``min(1, clip_norm / (norm + 1e-6))`` as in ``clip_grad_norm_``; all 1 without clipping."""
        if self.clip_norm is None:
            return np.ones(len(self.norms))
        return np.minimum(1.0, self.clip_norm / (self.clip_norms + 1e-6))

    def clipped_grad_norms(self) -> np.ndarray:
        """Each layer's weight-gradient norm **after** clipping, ``(steps, layers)``: the gradient
        the optimizer step used. Equal to :meth:`grad_norms` for a run without clipping."""
        return self.norms * self.clip_factors()[:, None]

    def first_last_ratio(self, last: int | None = None) -> float:
        """:func:`vgcourse.diagnosis.first_last_ratio` of this seed: the median over steps (the
        last ``last``, default all) of ‖∇W₁‖ / ‖∇W_L‖."""
        return first_last_ratio(self.norms, last)


@dataclass
class SeedRuns:
    """The same set-up trained once per seed: ``runs[i]`` is seed ``seeds[i]``."""

    setup: Setup
    seeds: tuple[int, ...]
    runs: list[SeedRun]
    seconds: float

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> SeedRun:
        return self.runs[index]

    def diverged(self) -> np.ndarray:
        """One bool per seed: did its loss become NaN or infinite?"""
        return np.array([r.diverged for r in self.runs])

    def test_accuracy(self, epoch: int = -1) -> np.ndarray:
        """Each seed's test accuracy after ``epoch`` (default the last); 0 for a diverged seed,
        whose predictions are NaN — it learned nothing usable."""
        return np.array([0.0 if r.diverged else r.history.test_accuracy[epoch] for r in self.runs])

    def test_loss(self, epoch: int = -1) -> np.ndarray:
        """Each seed's test loss after ``epoch`` (default the last); inf for a diverged seed."""
        return np.array([math.inf if r.diverged else r.history.test_loss[epoch] for r in self.runs])

    def first_last_ratios(self, last: int | None = None) -> np.ndarray:
        """Each seed's :meth:`SeedRun.first_last_ratio`."""
        return np.array([r.first_last_ratio(last) for r in self.runs])

    def describe_accuracy(self) -> str:
        """``"median 95.1 %, worst 94.4 % (seeds 0, 1, 2)"``, plus how many diverged, if any."""
        acc = self.test_accuracy()
        text = f"median {np.median(acc):.1%}, worst {acc.min():.1%} (seeds {', '.join(map(str, self.seeds))})"
        diverged = int(self.diverged().sum())
        return text + (f"; {diverged} diverged" if diverged else "")


def _check_setup(setup: object, data_for: object, clip_norm: object) -> None:
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be a vgcourse.experiments.Setup, got {type(setup).__name__}")
    if not callable(data_for):
        raise TypeError(f"data_for must be a function seed -> vgcourse.data.Split, got {type(data_for).__name__}")
    if clip_norm is not None and not (is_real(clip_norm) and 0 < clip_norm < math.inf):
        raise ValueError(f"clip_norm must be a positive finite number or None, got {clip_norm!r}")
    check_budget(setup.epochs, setup.lr, setup.batch_size, setup.optimizer)


def _stack_splits(splits: list[Split]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    for split in splits:
        if not isinstance(split, Split):
            raise TypeError(f"data_for must return a vgcourse.data.Split, got {type(split).__name__}")
        if split.n_classes is None:
            raise ValueError("run_seeds trains classifiers; the data has float targets")
    shapes = {(s.x_train.shape, s.x_test.shape) for s in splits}
    if len(shapes) != 1:
        raise ValueError(f"every seed's data must have the same shapes to be trained together, got {sorted(shapes)}")
    return tuple(torch.stack([getattr(s, name) for s in splits]) for name in ("x_train", "y_train", "x_test", "y_test"))


def _per_seed_loss(output: Tensor, target: Tensor) -> Tensor:
    # output (S, B, C), target (S, B) -> (S,): each seed's mean cross-entropy over its batch
    return F.cross_entropy(output.transpose(1, 2), target, reduction="none").mean(1)


@torch.no_grad()
def _evaluate(stack: StackedMLP, x: Tensor, y: Tensor) -> tuple[list[float], list[float]]:
    stack.eval()
    out = stack(x)
    stack.train()
    losses = _per_seed_loss(out, y)
    accuracy = (out.argmax(-1) == y).double().mean(1)
    return losses.tolist(), accuracy.tolist()


def _clip(parameters: list[nn.Parameter], max_norm: float) -> Tensor:
    # Per seed, exactly torch.nn.utils.clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)).
    squares = torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in parameters]).sum(0)
    norms = squares.sqrt()
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in parameters:
        p.grad.mul_(factor.view(-1, *([1] * (p.grad.dim() - 1))))
    return norms


def run_seeds(
    setup: Setup,
    seeds: tuple[int, ...] = SEEDS,
    data_for: Callable[[int], Split] = digits,
    clip_norm: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> SeedRuns:
    """Train the network ``setup`` describes once for every seed in ``seeds``, side by side.

    Args:
        setup: the network and budget; its own ``seed`` is replaced by each of ``seeds``.
        seeds: distinct non-negative integers; each decides the weights, the data split
            (``data_for(seed=seed)``) and the order of examples, as in ``experiments.run``.
        data_for: called as ``data_for(seed=seed)`` for each seed's data; default the digits, ``vgcourse.data.digits``.
        clip_norm: clip each seed's gradient to this total norm before every step, as
            ``torch.nn.utils.clip_grad_norm_`` would. Norms are recorded before clipping
            (``SeedRun.grad_norms``, ``SeedRun.clip_norms``); ``SeedRun.clipped_grad_norms``
            gives the clipped ones.
        device: by default the GPU when present, else the CPU.
        progress: show a progress bar over epochs (:func:`~vgcourse.training.epoch_bar`).

    Returns:
        a :class:`SeedRuns`; a seed whose loss became NaN or infinite stopped there, flagged.
    """
    _check_setup(setup, data_for, clip_norm)
    seeds = check_seeds(seeds)
    runs, seconds = _train_members(setup, [(seed, setup.lr) for seed in seeds], data_for, clip_norm, device, progress)
    return SeedRuns(setup, seeds, runs, seconds)


def _train_members(setup: Setup, members: list[tuple[int, float]], data_for: Callable[[int], Split],
                   clip_norm: float | None, device: torch.device | str | None, progress: bool) -> tuple[list[SeedRun], float]:
    """Train one stacked copy of ``setup`` per ``(seed, lr)`` member; the runs and the seconds taken.

    With one learning rate for every member the optimizer uses it directly. With several (SGD
    only), the optimizer's lr is 1 and each member's gradient is multiplied by its own lr just
    before the step, after the norms are recorded and after clipping: the SGD step
    ``w -= lr * g`` of that member.
    """
    seeds = [seed for seed, _ in members]
    lrs = [lr for _, lr in members]
    device = torch.device(device) if device is not None else default_device()
    splits = [data_for(seed=seed) for seed in seeds]
    x_train, y_train, x_test, y_test = (t.to(device) for t in _stack_splits(splits))
    setups = [setup.changed(seed=seed, lr=lr) for seed, lr in members]
    models = [build_model(s, split) for s, split in zip(setups, splits)]
    stack = StackedMLP(models).to(device)
    parameters = list(stack.parameters())
    one_lr = len(set(lrs)) == 1
    lr_scale = None if one_lr else torch.tensor(lrs, device=device)
    optimizer = (torch.optim.SGD if setup.optimizer == "sgd" else torch.optim.Adam)(parameters, lr=lrs[0] if one_lr else 1.0)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    histories = [History() for _ in seeds]
    norm_rows: list[Tensor] = []
    clip_rows: list[Tensor] = []
    alive = [True] * len(seeds)
    n, n_features = x_train.shape[1], x_train.shape[2]

    def record() -> None:
        for x, y, loss_name, accuracy_name in ((x_train, y_train, "train_loss", "train_accuracy"),
                                                (x_test, y_test, "test_loss", "test_accuracy")):
            losses, accuracies = _evaluate(stack, x, y)
            for s, history in enumerate(histories):
                if alive[s]:
                    getattr(history, loss_name).append(losses[s])
                    getattr(history, accuracy_name).append(accuracies[s])

    with subnormals_flushed():
        start_time = time.perf_counter()
        record()
        stack.train()
        step = 0
        for _ in epoch_bar(setup.epochs, progress):
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
            for start in range(0, n, setup.batch_size):
                idx = order[:, start : start + setup.batch_size]
                xb = torch.gather(x_train, 1, idx.unsqueeze(-1).expand(-1, -1, n_features))
                losses = _per_seed_loss(stack(xb), torch.gather(y_train, 1, idx))
                values = losses.detach().tolist()
                for s, value in enumerate(values):
                    if alive[s] and not math.isfinite(value):
                        alive[s], histories[s].diverged_at = False, step
                    if alive[s]:
                        histories[s].step_loss.append(value)
                if not any(alive):
                    break
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                if not all(alive):  # a diverged seed's slice is NaN; keep it out of the step
                    dead = torch.tensor([not a for a in alive], device=device)
                    for p in parameters:
                        p.grad[dead] = 0.0
                # before clipping, as GradientMonitor measures them
                norm_rows.append(torch.stack([
                    torch.linalg.vector_norm(w.grad, dim=(1, 2), dtype=torch.float64) for w in stack.weights
                ], dim=1))
                if clip_norm is not None:
                    clip_rows.append(_clip(parameters, clip_norm))
                if lr_scale is not None:
                    for p in parameters:
                        p.grad.mul_(lr_scale.view(-1, *([1] * (p.grad.dim() - 1))))
                optimizer.step()
                step += 1
            if not any(alive):
                break
            record()
    seconds = time.perf_counter() - start_time
    stack.copy_into(models, step)
    norms = torch.stack(norm_rows, dim=1).cpu().numpy() if norm_rows else np.zeros((len(seeds), 0, stack.depth))
    clips = torch.stack(clip_rows, dim=1).double().cpu().numpy() if clip_rows else np.zeros((len(seeds), 0))
    names = layer_names(models[0])
    runs = []
    for s, (seed_setup, model, history) in enumerate(zip(setups, models, histories)):
        steps = history.diverged_at if history.diverged else step
        history.seconds = seconds
        runs.append(SeedRun(seed_setup, model.cpu() if device.type != "cpu" else model, history,
                            norms[s, :steps], clips[s, :steps], names,
                            None if clip_norm is None else float(clip_norm)))
    return runs, seconds


@dataclass
class LrGrid:
    """One set-up trained at every learning rate of a grid, on the same seeds: ``by_lr[lr]``."""

    setup: Setup
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    by_lr: dict[float, SeedRuns]
    seconds: float

    def median_accuracy(self) -> np.ndarray:
        """The median over seeds of the final test accuracy at each lr, in the order of ``lrs``
        (a diverged seed counts as 0, as in :meth:`SeedRuns.test_accuracy`)."""
        return np.array([float(np.median(self.by_lr[lr].test_accuracy())) for lr in self.lrs])

    def best_lr(self) -> float:
        """The lr with the highest median final test accuracy (the smaller lr on a tie)."""
        return self.lrs[int(np.argmax(self.median_accuracy()))]

    def best(self) -> SeedRuns:
        """The runs at :meth:`best_lr`."""
        return self.by_lr[self.best_lr()]


def check_lrs(lrs: object) -> tuple[float, ...]:
    """``lrs`` as a tuple of distinct positive finite floats, in increasing order, or a ``ValueError``."""
    values = _distinct_values(lrs, "lrs", "lr", "positive finite number", lambda lr: is_real(lr) and 0 < lr < math.inf)
    return tuple(sorted(float(lr) for lr in values))


def run_lr_grid(
    setup: Setup,
    lrs: tuple[float, ...] = LR_GRID,
    seeds: tuple[int, ...] = SEEDS,
    data_for: Callable[[int], Split] = digits,
    clip_norm: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> LrGrid:
    """Train ``setup`` at every learning rate in ``lrs``, once per seed, all side by side.

    Each (lr, seed) member is what ``run_seeds(setup.changed(lr=lr), seeds)`` trains for that seed:
    the same weights, data split and example order for every lr, so the lrs differ in nothing
    else. One stacked computation for the whole grid, cheaper on a CPU than one ``run_seeds``
    call per lr (``benchmarks/seed_batching.py --grid``). SGD only: with several lrs each member's gradient is multiplied by
    its lr before a step of size 1, which for Adam (invariant to the gradient's scale) would not
    change the step.

    Args:
        setup: the network and budget; its ``lr`` and ``seed`` are replaced by the grid's.
        lrs: distinct positive learning rates (sorted increasing in the result).
        seeds, data_for, clip_norm, device, progress: as for :func:`run_seeds`.

    Returns:
        an :class:`LrGrid`: ``by_lr[lr]`` holds that lr's :class:`SeedRuns`.
    """
    _check_setup(setup, data_for, clip_norm)
    lrs, seeds = check_lrs(lrs), check_seeds(seeds)
    if setup.optimizer != "sgd" and len(lrs) > 1:
        raise ValueError(f"run_lr_grid trains SGD set-ups only (got optimizer={setup.optimizer!r}); "
                         "run_seeds(setup.changed(lr=lr)) trains one lr with any optimizer")
    members = [(seed, lr) for lr in lrs for seed in seeds]
    runs, seconds = _train_members(setup, members, data_for, clip_norm, device, progress)
    by_lr = {lr: SeedRuns(setup.changed(lr=lr), seeds, runs[i * len(seeds) : (i + 1) * len(seeds)], seconds)
             for i, lr in enumerate(lrs)}
    return LrGrid(setup, lrs, seeds, by_lr, seconds)
