"""One recurrent set-up, several seeds, trained side by side as one block-diagonal network.

The recurrent counterpart of :mod:`vgcourse.seeds`. ``run_sequence_seeds("lstm", data)`` trains
``sequence_model(..., cell="lstm", seed=s)`` on ``data`` with example order ``s`` for every seed
``s`` — what ``train(sequence_model(..., seed=s), data, seed=s)`` does — as **one** PyTorch
core of S × hidden units whose weight matrices are block-diagonal: seed ``s`` owns units
``s·H … (s+1)·H − 1`` of every gate and sees only its own input channels. Gradients outside the
blocks are zeroed before every step, and Adam leaves a weight whose gradient has always been 0
where it is (0), so the blocks never couple. The fused core keeps PyTorch's fast CPU kernels:
three seeds cost about half as much as three separate runs (``benchmarks/seed_batching.py``).

A seed whose loss or weights become NaN or infinite is a result: it stops there
(``History.diverged_at``), its block is zeroed so it cannot reach the others, and they train on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from vgcourse.data import Split
from vgcourse.models import CELLS, SequenceModel, sequence_model
from vgcourse.seeds import SEEDS, check_seeds
from vgcourse.training import History, check_budget, default_device, epoch_bar, subnormals_flushed
from vgcourse.validation import check_int

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gate blocks stacked in each PyTorch recurrent weight matrix (``weight_ih_l0`` has gates × H rows)."""


class StackedSequenceModel(nn.Module):
    """S single-layer :class:`~vgcourse.models.SequenceModel` s of one cell type as one network.

    Input ``(batch, time, S × features)`` — seed ``s``'s inputs in channels ``s·F … (s+1)·F − 1`` —
    output ``(batch, S, outputs)``: slice ``s`` is what ``models[s]`` computes on its channels.
    """

    def __init__(self, models: list[SequenceModel]) -> None:
        super().__init__()
        first = models[0].core
        self.seeds, self.gates = len(models), _GATES[_cell_name(first)]
        self.features, self.hidden = first.input_size, first.hidden_size
        self.outputs = models[0].readout.out_features
        s_count, h, f, o = self.seeds, self.hidden, self.features, self.outputs
        with torch.random.fork_rng(devices=[]):  # the big core's own random weights are overwritten
            options = {"nonlinearity": first.nonlinearity} if isinstance(first, nn.RNN) else {}
            self.core = type(first)(f * s_count, h * s_count, batch_first=True, **options)
            self.readout = nn.Linear(h * s_count, o * s_count)
        self.masks: dict[str, Tensor] = {}
        with torch.no_grad():
            for name, param in self._named():
                param.zero_()
                self.masks[name] = torch.zeros_like(param, dtype=torch.bool)
            for s, model in enumerate(models):
                for name, small in self._named(model):
                    block = self._block(name, s, self._param(name))
                    block.copy_(small.view(block.shape))
                    self._block(name, s, self.masks[name]).fill_(True)

    def _named(self, model: nn.Module | None = None) -> list[tuple[str, Tensor]]:
        model = self if model is None else model
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        return [(n, getattr(model.core, n)) for n in names] + [
            ("readout.weight", model.readout.weight), ("readout.bias", model.readout.bias)]

    def _param(self, name: str) -> Tensor:
        return dict(self._named())[name]

    def _block(self, name: str, s: int, big: Tensor) -> Tensor:
        """The view of ``big`` (a stacked parameter or mask) that belongs to seed ``s``."""
        h, f, o, size = self.hidden, self.features, self.outputs, self.seeds * self.hidden
        if name.startswith("readout"):
            rows = big[s * o : (s + 1) * o]
            return rows[:, s * h : (s + 1) * h] if name.endswith("weight") else rows
        # gate-major rows: gate k's units are rows k·S·H … (k+1)·S·H − 1; seed s owns H of them
        gated = big.view(self.gates, size, *big.shape[1:])[:, s * h : (s + 1) * h]
        if name.startswith("bias"):
            return gated
        width = f if "_ih_" in name else h
        return gated[:, :, s * width : (s + 1) * width]

    def forward(self, x: Tensor) -> Tensor:
        states, _ = self.core(x)
        return self.readout(states[:, -1]).view(len(x), self.seeds, self.outputs)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Zero every gradient entry outside the seeds' blocks (``where``, so a NaN cannot leak)."""
        for name, param in self._named():
            if param.grad is not None:
                param.grad.copy_(torch.where(self.masks[name], param.grad, torch.zeros_like(param.grad)))

    @torch.no_grad()
    def finite_seeds(self) -> list[bool]:
        """For each seed: are all of its weights finite?"""
        named = self._named()
        if all(bool(torch.isfinite(p).all()) for _, p in named):
            return [True] * self.seeds
        return [all(bool(torch.isfinite(self._block(n, s, p)).all()) for n, p in named) for s in range(self.seeds)]

    @torch.no_grad()
    def retire(self, s: int, optimizer: torch.optim.Optimizer) -> None:
        """Take seed ``s`` out: zero its weights, its mask and its optimizer state."""
        for name, param in self._named():
            for tensor in (param, self.masks[name], *(v for v in optimizer.state.get(param, {}).values()
                                                        if isinstance(v, Tensor) and v.shape == param.shape)):
                self._block(name, s, tensor).zero_()

    @torch.no_grad()
    def copy_into(self, models: list[SequenceModel]) -> None:
        """Write seed ``s``'s weights into ``models[s]``."""
        for s, model in enumerate(models):
            for name, small in self._named(model):
                small.copy_(self._block(name, s, self._param(name)).reshape(small.shape))


def _cell_name(core: nn.RNNBase) -> str:
    return "lstm" if isinstance(core, nn.LSTM) else "gru" if isinstance(core, nn.GRU) else "rnn"


@dataclass
class SequenceSeedRuns:
    """One recurrent set-up trained once per seed: ``models[i]`` and ``histories[i]`` are seed ``seeds[i]``."""

    cell: str
    seeds: tuple[int, ...]
    models: list[SequenceModel]
    histories: list[History]
    seconds: float

    def __len__(self) -> int:
        return len(self.seeds)

    def diverged(self) -> np.ndarray:
        """One bool per seed: did its loss or weights become NaN or infinite?"""
        return np.array([h.diverged for h in self.histories])

    def test_loss(self, epoch: int = -1) -> np.ndarray:
        """Each seed's test loss after ``epoch`` (default the last); inf for a diverged seed."""
        return np.array([math.inf if h.diverged else h.test_loss[epoch] for h in self.histories])

    def lowest_test_loss(self) -> np.ndarray:
        """Each seed's lowest test loss over all epochs, before training included; inf for a diverged seed."""
        return np.array([math.inf if h.diverged or not h.test_loss else min(h.test_loss) for h in self.histories])

    def describe_loss(self) -> str:
        """``"median 0.0021, worst 0.0063 (seeds 0, 1, 2)"`` for the final test loss."""
        loss = self.test_loss()
        return f"median {np.median(loss):.4f}, worst {loss.max():.4f} (seeds {', '.join(map(str, self.seeds))})"


def _check(cell: object, data: object, hidden_size: object) -> None:
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {list(CELLS)}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a vgcourse.data.Split, got {type(data).__name__}")
    if data.x_train.dim() != 3 or data.y_train.dtype == torch.int64 or data.y_train.dim() != 2:
        raise ValueError(
            "data must be a regression sequence task: x of shape (n, time, features), float y of shape (n, outputs); "
            f"got x {tuple(data.x_train.shape)}, y {tuple(data.y_train.shape)} {data.y_train.dtype}"
        )
    check_int(hidden_size, "hidden_size", minimum=1)


def _tile(x: Tensor, seeds: int) -> Tensor:
    return x.repeat(1, 1, seeds)  # every seed sees the same examples in its own channels


def _per_seed_mse(output: Tensor, target: Tensor) -> Tensor:
    # output (B, S, O), target (B, S, O) -> (S,): each seed's mean squared error over its batch
    return (output - target).pow(2).mean(dim=(0, 2))


def run_sequence_seeds(
    cell: str,
    data: Split,
    seeds: tuple[int, ...] = SEEDS,
    hidden_size: int = 32,
    epochs: int = 20,
    lr: float = 0.02,
    batch_size: int = 16,
    optimizer: str = "adam",
    device: torch.device | str | None = None,
    progress: bool = True,
    nonlinearity: str = "tanh",
    initialize: Callable[[SequenceModel, int], object] | None = None,
) -> SequenceSeedRuns:
    """Train ``sequence_model(features, hidden_size, outputs, cell, seed=s)`` on ``data`` for every seed.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        data: a regression sequence task such as ``vgcourse.data.adding_problem``; every seed
            trains on the same split.
        seeds: distinct non-negative integers; seed ``s`` decides the initial weights and the
            order of examples, as ``train(..., seed=s)`` does.
        hidden_size, epochs, lr, batch_size, optimizer: as for ``sequence_model`` and ``train``.
        device: by default the GPU when present, else the CPU.
        progress: show a progress bar over epochs (:func:`~vgcourse.training.epoch_bar`).
        nonlinearity: the plain RNN's, as for ``sequence_model``.
        initialize: called as ``initialize(model, seed)`` on each seed's freshly built model to
            change it in place before training, e.g.
            ``lambda model, seed: forget_bias_(model, 1.0)`` (``vgcourse.recurrent_init``).

    Returns:
        a :class:`SequenceSeedRuns` with each seed's trained model and history; a seed that
        diverged stopped there, flagged.
    """
    _check(cell, data, hidden_size)
    check_budget(epochs, lr, batch_size, optimizer)
    seeds = check_seeds(seeds)
    device = torch.device(device) if device is not None else default_device()
    n_outputs = data.y_train.shape[1]
    if initialize is not None and not callable(initialize):
        raise TypeError(f"initialize must be a function (model, seed) -> None, got {type(initialize).__name__}")
    models = [sequence_model(data.n_features, hidden_size, n_outputs, cell=cell, seed=s, nonlinearity=nonlinearity)
              for s in seeds]
    for model, seed in zip(models, seeds):
        if initialize is not None:
            initialize(model, seed)
    return _train(models, data, seeds, epochs, lr, batch_size, optimizer, device, cell, progress)


def _train(models: list[SequenceModel], data: Split, seeds: tuple[int, ...], epochs: int, lr: float,
           batch_size: int, optimizer_name: str, device: torch.device, cell: str,
           progress: bool = False) -> SequenceSeedRuns:
    stack = StackedSequenceModel(models).to(device)
    stack.masks = {k: v.to(device) for k, v in stack.masks.items()}
    s_count = len(seeds)
    optimizer = (torch.optim.SGD if optimizer_name == "sgd" else torch.optim.Adam)(stack.parameters(), lr=lr)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    histories = [History() for _ in seeds]
    alive = [True] * s_count
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    n = len(x_train)

    @torch.no_grad()
    def record() -> None:
        for x, y, losses in ((data.x_train, data.y_train, "train_loss"), (data.x_test, data.y_test, "test_loss")):
            out = stack(_tile(x.to(device), s_count))
            values = _per_seed_mse(out, y.to(device).unsqueeze(1).expand_as(out)).tolist()
            for s, history in enumerate(histories):
                if alive[s]:
                    getattr(history, losses).append(values[s])

    def stop(s: int, step: int) -> None:
        alive[s], histories[s].diverged_at = False, step
        stack.retire(s, optimizer)

    with subnormals_flushed():
        start_time = time.perf_counter()
        for s, finite in enumerate(stack.finite_seeds()):
            if not finite:  # NaN weights from the start: its first loss would be NaN
                stop(s, 0)
        record()
        step = 0
        for _ in epoch_bar(epochs, progress):
            orders = [torch.randperm(n, generator=g).to(device) for g in generators]
            for start in range(0, n, batch_size):
                idx = [order[start : start + batch_size] for order in orders]
                xb = torch.cat([x_train[i] for i in idx], dim=2)
                yb = torch.stack([y_train[i] for i in idx], dim=1)
                losses = _per_seed_mse(stack(xb), yb)
                for s, value in enumerate(losses.detach().tolist()):
                    if alive[s] and not math.isfinite(value):
                        stop(s, step)
                    if alive[s]:
                        histories[s].step_loss.append(value)
                if not any(alive):
                    break
                optimizer.zero_grad(set_to_none=True)
                # A stopped seed's NaN loss must not enter the sum: 0 x NaN would reach the others.
                live = torch.tensor(alive, device=device)
                torch.where(live, losses, torch.zeros_like(losses)).sum().backward()
                stack.mask_gradients()
                optimizer.step()
                step += 1
                for s, finite in enumerate(stack.finite_seeds()):
                    if alive[s] and not finite:
                        stop(s, step)  # its next loss would be NaN; its block must not reach the others
            if not any(alive):
                break
            record()
    seconds = time.perf_counter() - start_time
    stack.copy_into(models)
    for history in histories:
        history.seconds = seconds
    return SequenceSeedRuns(cell, seeds, [m.cpu() for m in models], histories, seconds)
