"""One-batch measurements of a model as it stands: per-layer gradient norms and activations.

These answer "what does the gradient look like right now?" (at initialization, say). To watch
the same quantities over training, use the gradient monitor.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from vgcourse.activations import ACTIVATION_MODULES
from vgcourse.models import layers
from vgcourse.training import task_loss


def check_batch(model: object, x: object, y: object = None) -> None:
    """Raise a clear error unless ``model`` is a module and ``x`` (and ``y``) a non-empty batch."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError("x is an empty batch; pass at least one example")
    if y is not None:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a tensor, got {type(y).__name__}")
        if len(y) != len(x):
            raise ValueError(f"x and y hold different numbers of examples: {len(x)} and {len(y)}")


def layer_gradient_norms(model: nn.Module, x: Tensor, y: Tensor) -> list[float]:
    """L2 norm of ``∂loss/∂W`` for each layer of ``vgcourse.models.layers(model)``, in that order.

    Runs one forward and backward pass on the batch ``(x, y)`` with the course's task loss
    (cross-entropy for integer targets, MSE otherwise). The model's ``.grad`` fields are left
    as they were. Norms are summed in float64: a float32 sum of squares underflows to 0 for
    entries below about 1e-23, so here a norm is 0 only if every entry is.
    """
    check_batch(model, x, y)
    weights = [layer.weight for layer in layers(model)]
    if not weights:
        raise ValueError("model has no layers to measure (no weight matrix)")
    device = next(model.parameters()).device
    loss = task_loss(model(x.to(device)), y.to(device))
    grads = torch.autograd.grad(loss, weights)
    return [float(g) for g in torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads]).cpu()]


@torch.no_grad()
def activation_outputs(model: nn.Module, x: Tensor) -> list[tuple[str, str, Tensor]]:
    """Outputs of every activation module in ``model`` on the batch ``x``, in forward order.

    Returns:
        a list of ``(label, activation name, output)``; for a course MLP the labels are
        "layer 1", "layer 2", ...; otherwise the module's qualified name.
    """
    check_batch(model, x)
    labels = {module: name for name, module in model.named_modules()}
    for layer in layers(model):  # a course layer's activation takes its layer's label
        if layer.activation is not None:
            labels[layer.activation] = layer.name
    records: list[tuple[str, str, Tensor]] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        records.append((labels[module], ACTIVATION_MODULES[type(module)], output.detach().cpu()))

    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if type(module) in ACTIVATION_MODULES
    ]
    was_training = model.training
    with ExitStack() as stack:
        for handle in handles:
            stack.enter_context(handle)  # a RemovableHandle removes its hook on exit
        stack.callback(model.train, was_training)
        model.eval()
        model(x.to(next(model.parameters()).device))
    return records


def fitted_decay_factor(values: Sequence[float]) -> float:
    """The factor by which ``values`` shrink per step, from a least-squares line through
    ``log(values)`` against the index. A factor of 0.25 means a fourfold loss per layer.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"need at least two values to fit a decay, got {arr.size}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"values must be positive and finite to take logs, got {arr.tolist()}")
    slope = np.polyfit(np.arange(arr.size), np.log(arr), 1)[0]
    return math.exp(slope)
