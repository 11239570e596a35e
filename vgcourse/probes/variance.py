"""Signal propagation: how the size of activations and gradients changes from layer to layer.

For a layer ``z = W h + b`` with independent zero-mean weights of variance ``Var(w)`` and zero
biases, the forward pass multiplies the pre-activations' variance by

    Var(z_l) / Var(z_{l-1}) = fan_in · Var(w) · E[f(z)²] / Var(z)

and the backward pass multiplies the variance of ``δ = ∂L/∂z`` by

    Var(δ_{l-1}) / Var(δ_l) = fan_out · Var(w) · E[f'(z)²].

``variance_gain`` evaluates these factors for small pre-activations (where they do not depend on
the scale of ``z``); ``layer_variances`` measures the per-layer quantities on one batch, so a
notebook can put theory and measurement side by side (Glorot & Bengio 2010; He et al. 2015).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vgcourse.activations import ACTIVATION_MODULES, LEAKY_SLOPE
from vgcourse.models import INITS
from vgcourse.models import layers as model_layers
from vgcourse.training import task_loss
from vgcourse.validation import check_int

DIRECTIONS = ("forward", "backward")

# E[f(z)²] / Var(z) for zero-mean Gaussian z of small variance; sigmoid is missing on purpose:
# its outputs have mean 1/2, so the zero-mean argument behind the forward formula does not apply.
_FORWARD_FACTOR = {"tanh": 1.0, "relu": 0.5, "leaky_relu": (1 + LEAKY_SLOPE**2) / 2}
# E[f'(z)²] for the same z: sigmoid'(0) = 1/4, tanh'(0) = 1, ReLU' is 1 on half the inputs.
_BACKWARD_FACTOR = {"sigmoid": 1 / 16, "tanh": 1.0, "relu": 0.5, "leaky_relu": (1 + LEAKY_SLOPE**2) / 2}


def weight_variance(init: str, fan_in: int, fan_out: int) -> float:
    """Variance of one initial weight of a ``fan_in → fan_out`` layer under ``init``.

    Args:
        init: one of ``vgcourse.models.INITS``: ``"default"`` (PyTorch's uniform on
            ``±1/sqrt(fan_in)``), ``"xavier"`` (Glorot & Bengio 2010), ``"he"`` (He et al. 2015) or
            ``"lecun"`` (LeCun et al. 1998).
        fan_in: inputs of the layer.
        fan_out: outputs of the layer.

    Returns:
        ``1 / (3 fan_in)``, ``2 / (fan_in + fan_out)``, ``2 / fan_in`` or ``1 / fan_in`` respectively.
    """
    check_int(fan_in, "fan_in", minimum=1)
    check_int(fan_out, "fan_out", minimum=1)
    if init == "default":
        return 1 / (3 * fan_in)
    if init == "xavier":
        return 2 / (fan_in + fan_out)
    if init == "he":
        return 2 / fan_in
    if init == "lecun":
        return 1 / fan_in
    raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")


def variance_gain(activation: str, init: str, fan_in: int, fan_out: int, direction: str = "forward") -> float:
    """Predicted factor by which one layer multiplies the variance of the signal.

    Args:
        activation: ``"tanh"``, ``"relu"`` or ``"leaky_relu"``; for ``direction="backward"``
            also ``"sigmoid"``.
        init: one of ``vgcourse.models.INITS``.
        fan_in, fan_out: the layer's sizes.
        direction: ``"forward"`` for pre-activations ``z``, ``"backward"`` for ``∂L/∂z``.

    Returns:
        ``fan_in · Var(w) · E[f(z)²]/Var(z)`` (forward) or ``fan_out · Var(w) · E[f'(z)²]``
        (backward), for small zero-mean pre-activations and zero biases. A gain of 1 keeps the
        variance constant across layers; the standard deviation changes by its square root.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of {list(DIRECTIONS)}")
    factors = _FORWARD_FACTOR if direction == "forward" else _BACKWARD_FACTOR
    if activation not in factors:
        raise ValueError(
            f"no {direction} variance gain for activation {activation!r}; choose one of {sorted(factors)}"
            + (" (sigmoid outputs have mean 1/2, so the zero-mean forward argument does not apply)"
               if activation == "sigmoid" else "")
        )
    variance = weight_variance(init, fan_in, fan_out)
    fan = fan_in if direction == "forward" else fan_out
    return fan * variance * factors[activation]


@dataclass(frozen=True)
class LayerVariances:
    """Per-layer signal sizes on one batch, index 0 = layer 1 (next to the input).

    Attributes:
        preactivation_std: std of ``z_l = W_l h_{l-1} + b_l`` over the batch and the units.
        activation_std: std of ``h_l = f(z_l)``; NaN for a layer without an activation
            (the output layer).
        signal_std: the part of ``activation_std`` that depends on the input: the root mean
            square over units of each unit's std across the batch. A constant offset (a bias,
            a unit stuck at 0) counts in ``activation_std`` but not here. NaN like it.
        gradient_std: std of ``δ_l = ∂L/∂z_l`` over the batch and the units.
    """

    preactivation_std: np.ndarray
    activation_std: np.ndarray
    signal_std: np.ndarray
    gradient_std: np.ndarray


def layer_variances(model: nn.Module, x: Tensor, y: Tensor) -> LayerVariances:
    """Measure :class:`LayerVariances` of ``model`` with one forward and backward pass on ``(x, y)``.

    Args:
        model: a model whose ``nn.Linear`` layers run in registration order, each followed by
            at most one module before the next layer (a course ``deep_mlp`` without batch norm).
        x: a batch of inputs.
        y: its targets; the loss is the course's task loss (cross-entropy for class indices).

    Returns:
        a :class:`LayerVariances`. The model's ``.grad`` fields and mode are left untouched
        (``torch.autograd.grad`` does not accumulate into ``.grad``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if len(x) < 2 or len(x) != len(y):
        raise ValueError(f"need a batch of at least 2 examples with one target each, got {len(x)} and {len(y)}")
    layers = [layer.module for layer in model_layers(model) if isinstance(layer.module, nn.Linear)]
    if not layers:
        raise ValueError("model has no nn.Linear layers to measure")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("model has batch normalization; the variance formulas here assume plain layers")

    order = {layer: i for i, layer in enumerate(layers)}
    pre: list[Tensor | None] = [None] * len(layers)
    post: list[Tensor | None] = [None] * len(layers)
    current: list[int | None] = [None]

    def on_linear(module: nn.Module, inputs: object, output: Tensor) -> None:
        pre[order[module]] = output
        current[0] = order[module]

    def on_activation(module: nn.Module, inputs: object, output: Tensor) -> None:
        index = current[0]
        if index is not None and post[index] is None:
            post[index] = output.detach()

    with ExitStack() as stack:  # a RemovableHandle removes its hook on exit
        for layer in layers:
            stack.enter_context(layer.register_forward_hook(on_linear))
        for m in model.modules():
            if type(m) in ACTIVATION_MODULES:
                stack.enter_context(m.register_forward_hook(on_activation))
        device = next(model.parameters()).device
        with torch.enable_grad():
            loss = task_loss(model(x.to(device)), y.to(device))
            grads = torch.autograd.grad(loss, [z for z in pre if z is not None])
    if any(z is None for z in pre):
        raise ValueError("some nn.Linear layers of the model did not run in the forward pass")

    def std(t: Tensor | None) -> float:
        return float("nan") if t is None else float(t.detach().float().std())

    def signal(t: Tensor | None) -> float:
        return float("nan") if t is None else float(t.float().reshape(len(t), -1).var(0).mean().sqrt())

    return LayerVariances(
        preactivation_std=np.array([std(z) for z in pre]),
        activation_std=np.array([std(h) for h in post]),
        signal_std=np.array([signal(h) for h in post]),
        gradient_std=np.array([std(g) for g in grads]),
    )
