"""A plain training loop and the ``History`` it returns.

The loop knows nothing about plots or monitors: anything that needs to look at the gradients
between ``backward()`` and ``optimizer.step()`` (clipping, say) is passed as ``after_backward``.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from vgcourse.data import Split
from vgcourse.validation import check_int, check_number

OPTIMIZERS = ("sgd", "adam")
ON_DIVERGENCE = ("raise", "stop")
"""What ``train`` does when the loss becomes NaN or infinite: raise :class:`TrainingDiverged`,
or stop and return the history so far with ``History.diverged_at`` set."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped instead of running on with NaNs."""


@dataclass
class History:
    """What happened during training. Index 0 of each per-epoch list is *before* training.

    ``train_accuracy`` and ``test_accuracy`` stay empty for regression tasks. A run that
    diverged (``train(..., on_divergence="stop")``) has ``diverged_at`` set to the step whose loss
    was NaN or infinite; its lists end there (the epoch it blew up in is not recorded).
    """

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged_at: int | None = None

    @property
    def diverged(self) -> bool:
        """Whether training stopped because the loss became NaN or infinite."""
        return self.diverged_at is not None

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return max(len(self.train_loss) - 1, 0)


@contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Inside the block, subnormal floats are flushed to zero (``torch.set_flush_denormal``);
    PyTorch's default (off) is restored after. Every training loop of the course runs in one.

    Vanishing gradients reach float32's subnormal range (below 1.2e-38), where CPU arithmetic
    runs up to 100x slower; the values lost are zero for any practical purpose.
    """
    flushing = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushing:
            torch.set_flush_denormal(False)


def epoch_bar(epochs: int, progress: bool) -> tqdm:
    """The ``tqdm.auto`` progress bar over ``range(1, epochs + 1)`` that every training loop shows.

    ``progress=False`` hides it. Otherwise tqdm's own settings apply: ``TQDM_DISABLE=1`` in the
    environment hides it too, which is how the test suite and ``vgcourse build`` keep it out of
    nbval runs and HTML pages while a learner in JupyterLab sees it.
    """
    options = {} if progress else {"disable": True}  # an explicit disable=False would override TQDM_DISABLE
    return tqdm(range(1, epochs + 1), desc="training", unit="epoch", leave=False, **options)


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def task_loss(output: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy for integer class targets, mean squared error for float targets."""
    if target.dtype == torch.int64:
        return F.cross_entropy(output, target)
    return F.mse_loss(output, target)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024) -> tuple[float, float | None]:
    """Mean loss and accuracy (``None`` for regression) of ``model`` on ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        out = model(xb)
        total_loss += float(task_loss(out, yb)) * len(xb)
        if yb.dtype == torch.int64:
            correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    accuracy = correct / len(x) if y.dtype == torch.int64 else None
    return total_loss / len(x), accuracy


def check_budget(epochs: object, lr: object, batch_size: object, optimizer: object, on_divergence: object = "raise") -> None:
    """Raise ``ValueError`` naming the first bad training-budget argument of :func:`train`."""
    check_int(epochs, "epochs", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_number(lr, "lr", 0)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"unknown on_divergence {on_divergence!r}; choose one of {list(ON_DIVERGENCE)}")


def _check_args(model: object, data: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise ValueError("model has no parameters to train")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a vgcourse.data.Split, got {type(data).__name__}")


def train(
    model: nn.Module,
    data: Split,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 64,
    optimizer: str = "sgd",
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    after_backward: Callable[[nn.Module, int], None] | None = None,
    on_divergence: str = "raise",
) -> History:
    """Train ``model`` on ``data`` with minibatch SGD or Adam and return its :class:`History`.

    Args:
        model: any module mapping a batch of ``data.x_train`` to outputs; moved to ``device``.
        data: a :class:`~vgcourse.data.Split`. Integer targets mean classification
            (cross-entropy, accuracy recorded); float targets mean regression (MSE).
        epochs: passes over the training set.
        lr: learning rate.
        batch_size: examples per step; the last batch of an epoch may be smaller.
        optimizer: ``"sgd"`` (plain, no momentum) or ``"adam"``.
        seed: decides the order of examples; the same seed gives the same run.
        device: where to train; by default the GPU when present, else the CPU.
        progress: show a progress bar over epochs (:func:`epoch_bar`).
        after_backward: called as ``after_backward(model, step)`` after each ``backward()``
            and before the optimizer step; e.g. to clip gradients.
        on_divergence: when a training loss becomes NaN or infinite, ``"raise"``
            :class:`TrainingDiverged`, or ``"stop"`` and return the history so far, flagged
            with ``History.diverged_at``.

    Returns:
        a :class:`History` with losses (and accuracies) before training and after each epoch.

    Raises:
        TrainingDiverged: when a training loss becomes NaN or infinite and ``on_divergence="raise"``.

    While it runs, subnormal floats are flushed to zero (:func:`subnormals_flushed`).
    """
    _check_args(model, data)
    check_budget(epochs, lr, batch_size, optimizer, on_divergence)
    check_int(seed, "seed", minimum=0)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x, y = data.x_train.to(device), data.y_train.to(device)
    history = History()
    classification = data.y_train.dtype == torch.int64

    def record() -> None:
        for split_x, split_y, losses, accuracies in (
            (data.x_train, data.y_train, history.train_loss, history.train_accuracy),
            (data.x_test, data.y_test, history.test_loss, history.test_accuracy),
        ):
            loss, accuracy = evaluate(model, split_x, split_y)
            losses.append(loss)
            if classification:
                accuracies.append(accuracy)

    with subnormals_flushed():  # deep sigmoid networks stay fast; see subnormals_flushed
        start_time = time.perf_counter()
        record()
        model.train()
        step = 0
        bar = epoch_bar(epochs, progress)
        for epoch in bar:
            order = torch.randperm(len(x), generator=gen).to(device)
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                loss = task_loss(model(x[idx]), y[idx])
                value = float(loss.detach())
                if not math.isfinite(value):
                    if on_divergence == "stop":
                        history.diverged_at = step
                        break
                    raise TrainingDiverged(
                        f"the training loss became {value} at epoch {epoch}, step {step}; "
                        f"try a smaller lr (now {lr}) or clip the gradients"
                    )
                history.step_loss.append(value)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if after_backward is not None:
                    after_backward(model, step)
                opt.step()
                step += 1
            if history.diverged:
                break
            record()
            bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}")
    history.seconds = time.perf_counter() - start_time
    return history
