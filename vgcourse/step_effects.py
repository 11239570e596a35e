"""What each layer's optimizer step does to the loss, not only how large it is.

``GradientMonitor`` records the size of each layer's step, ``‖Δw‖ / ‖w‖``. An optimizer that
rescales every parameter's step (Adam) can make those sizes alike in every layer while the
steps still matter very differently. To first order a step ``Δw`` changes the loss of the batch
that produced the gradient ``g`` by ``g · Δw``, so a layer's step buys as much as its gradient is
large along it. :class:`StepEffects` records that, per layer and step, together with the cosine
between successive gradients of a layer (near 1: the batches agree on the direction; near 0:
batch-to-batch noise). Pass it to a training loop as its ``after_backward`` callback:

    effects = StepEffects()
    train(model, data, after_backward=effects)   # or experiments.run(setup, after_backward=effects)
    effects.loss_changes()       # (steps - 1, layers): g_t · (w_{t+1} - w_t), negative = the loss fell
    effects.gradient_cosines()   # (steps - 1, layers): cos(g_t, g_{t+1})

It reads the gradients and weights only (before each optimizer step) and changes nothing, so it
runs alongside a ``GradientMonitor`` or a gradient clipper (place it after the clipper to see the
gradient the step used).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from vgcourse.models import layers
from vgcourse.validation import is_int

__all__ = ["StepEffects"]


class StepEffects:
    """An ``after_backward(model, step)`` callback recording each layer's first-order loss change
    per step, ``g_t · Δw_t``, and the cosine between its successive gradients.

    Args:
        model: the model being trained; its layers are those of :func:`vgcourse.models.layers`
            (every weight with two or more dimensions), in the same order and with the same
            names as ``GradientMonitor`` gives a course model's. ``None`` (the default): the
            model of the first call, for a loop that builds the model itself
            (``experiments.run(setup, after_backward=StepEffects())``).

    A step's weight change ``Δw_t = w_{t+1} - w_t`` is known only when the next call sees
    ``w_{t+1}``, so after ``n`` calls there are ``n - 1`` rows: the last step's effect is never
    recorded. A layer without a gradient at a call reads NaN in the rows that need it. Values are
    summed in float64; each call copies the layers' weights and gradients once (as much memory
    again as the weights, twice).
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        self.model: nn.Module | None = None
        self.layer_names: list[str] = []
        self._weights: list[Tensor] = []
        self._previous: tuple[list[Tensor | None], list[Tensor]] | None = None
        self._changes: list[list[float]] = []
        self._cosines: list[list[float]] = []
        self._last_step: int | None = None
        if model is not None:
            self._bind(model)

    def _bind(self, model: object) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        found = layers(model)
        if not found:
            raise ValueError(f"{type(model).__name__} has no layer: no parameter with two or more dimensions")
        self.model = model
        self.layer_names = [layer.name for layer in found]
        self._weights = [layer.weight for layer in found]

    def __call__(self, model: nn.Module, step: int) -> None:
        """Record the step before this one; called by the training loop after each ``backward()``."""
        if self.model is None:
            self._bind(model)
        elif model is not self.model:
            raise ValueError("StepEffects was called with another model than the one it watches")
        if not is_int(step) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        if self._last_step is not None and step != self._last_step + 1:
            raise ValueError(f"steps must follow one another: got step {step} after step {self._last_step}")
        self._last_step = step
        with torch.no_grad():
            grads = [None if w.grad is None else _dense(w.grad).to(torch.float64, copy=True) for w in self._weights]
            weights = [w.detach().to(torch.float64, copy=True) for w in self._weights]
            if self._previous is not None:
                old_grads, old_weights = self._previous
                changes, cosines = [], []
                for old_g, g, old_w, w in zip(old_grads, grads, old_weights, weights):
                    changes.append(math.nan if old_g is None else float((old_g * (w - old_w)).sum()))
                    cosines.append(_cosine(old_g, g))
                self._changes.append(changes)
                self._cosines.append(cosines)
        self._previous = (grads, weights)

    @property
    def steps(self) -> int:
        """Number of steps whose effect is recorded (one less than the calls)."""
        return len(self._changes)

    def loss_changes(self) -> np.ndarray:
        """``g_t · (w_{t+1} - w_t)`` for every recorded step and layer, ``(steps, layers)``: the change
        of step ``t``'s batch loss, to first order, from that layer's step alone. Negative when the
        step lowered the loss. Summed over the layers it is the weights' part of the step's first-order
        change (biases and other one-dimensional parameters are no layers)."""
        return np.array(self._changes, dtype=np.float64).reshape(self.steps, len(self.layer_names))

    def gradient_cosines(self) -> np.ndarray:
        """Cosine between each layer's gradient at step ``t`` and at step ``t + 1``, ``(steps, layers)``
        (NaN where either gradient is missing or zero)."""
        return np.array(self._cosines, dtype=np.float64).reshape(self.steps, len(self.layer_names))


def _dense(grad: Tensor) -> Tensor:
    """``grad`` as a dense tensor (an ``nn.Embedding(sparse=True)`` gradient is sparse)."""
    return grad.detach().to_dense() if grad.is_sparse else grad.detach()


def _cosine(a: Tensor | None, b: Tensor | None) -> float:
    if a is None or b is None:
        return math.nan
    norms = float(a.norm() * b.norm())
    return float((a * b).sum()) / norms if norms > 0 else math.nan
