"""The main path of a deep MLP: each hidden state ``h_l`` and the gradient that reaches it.

``probes.layer_gradient_norms`` measures weight gradients, ``∂L/∂W_l = δ_l h_{l-1}^T``: they
mix the backward signal with the size of the layer's input. These functions separate the
two, which matters when the hidden states themselves grow with depth (as in a residual
network whose blocks add a positive amount at every layer).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vgcourse.models import DeepMLP
from vgcourse.probes.layers import check_batch
from vgcourse.training import task_loss


def _check(model: object, x: object, y: object = None, needs_y: bool = False) -> None:
    if not isinstance(model, DeepMLP):
        raise TypeError(f"model must be a vgcourse.models.DeepMLP (from deep_mlp), got {type(model).__name__}")
    if len(model) < 2:
        raise ValueError("model has no hidden layers (depth 1 is a linear model)")
    if needs_y and not isinstance(y, Tensor):
        raise TypeError(f"y must be a tensor, got {type(y).__name__}")
    check_batch(model, x, y)


def _hidden_states(model: DeepMLP, x: Tensor) -> tuple[list[Tensor], Tensor]:
    h = x.to(next(model.parameters()).device)
    states = []
    layers = list(model)
    for layer in layers[:-1]:
        h = layer(h)
        states.append(h)
    return states, layers[-1](h)


def hidden_state_norms(model: DeepMLP, x: Tensor) -> list[float]:
    """Root-mean-square size of each hidden state ``h_1 ... h_{L-1}`` on the batch ``x``:
    ``sqrt(mean(h_l**2))`` over examples and units. Runs in the model's current mode."""
    _check(model, x)
    with torch.no_grad():
        states, _ = _hidden_states(model, x)
    return [float(h.pow(2).mean().sqrt()) for h in states]


def hidden_gradient_norms(model: DeepMLP, x: Tensor, y: Tensor) -> list[float]:
    """L2 norm of ``∂loss/∂h_l`` for each hidden state ``h_1 ... h_{L-1}`` on the batch ``(x, y)``.

    This is the backward signal itself, before it is multiplied by a layer's input to form a
    weight gradient. One forward and backward pass with the course's task loss, in the model's
    current mode; the parameters' ``.grad`` fields are left as they were. Norms are summed in
    float64, so a norm is 0 only if every entry of the gradient is.
    """
    _check(model, x, y, needs_y=True)
    states, output = _hidden_states(model, x)
    grads = torch.autograd.grad(task_loss(output, y.to(output.device)), states)
    return [float(torch.linalg.vector_norm(g, dtype=torch.float64)) for g in grads]
