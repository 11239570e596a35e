"""The main path of a deep MLP: each hidden state ``h_l`` and the gradient that reaches it.

``probes.layer_gradient_norms`` measures weight gradients, ``∂L/∂W_l = δ_l h_{l-1}^T``: they
mix the backward signal with the size of the layer's input. These functions separate the
two, which matters when the hidden states themselves grow with depth (as in a residual
network whose blocks add a positive amount at every layer).

``hidden_state_spreads`` measures the forward signal itself: how much ``h_l`` differs from one
example to the next. The forward pass carries a change of the input through the same Jacobians
``J_l = diag(f'(z_l)) W_l`` that the backward pass applies transposed, so in a plain network the
spread and the gradient reaching ``h_l`` shrink layer by layer at similar rates.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vgcourse.models import DeepMLP
from vgcourse.probes.layers import check_batch, fitted_decay_factor
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


def hidden_state_spreads(model: DeepMLP, x: Tensor) -> list[float]:
    """How much each hidden state ``h_1 ... h_{L-1}`` varies across the batch ``x``.

    Args:
        model: a course MLP (:func:`vgcourse.models.deep_mlp`); run in its current mode.
        x: a batch of at least two inputs.

    Returns:
        for each hidden layer, the standard deviation of each unit's output over the examples
        (``h_l.std(0)``, unbiased), averaged over the units. A spread near 0 means the layer
        gives almost the same output whatever the input: the signal about the input is gone.
    """
    _check(model, x)
    if len(x) < 2:
        raise ValueError(f"a spread over the batch needs at least two examples, got a batch of {len(x)}")
    with torch.no_grad():
        states, _ = _hidden_states(model, x)
    return [float(h.double().std(0).mean()) for h in states]


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


def signal_decay_factor(model: DeepMLP, x: Tensor, y: Tensor, first: int = 2) -> float:
    """The factor by which the backward signal ``‖∂L/∂h_l‖`` shrinks per layer.

    Args:
        model: a course MLP with at least ``first + 1`` hidden layers.
        x, y: a batch and its targets; one forward and backward pass, as
            :func:`hidden_gradient_norms`.
        first: the earliest hidden layer of the fit (1-based). The default 2 leaves out layer 1,
            whose input is the raw data, as notebook 02 does.

    Returns:
        the per-layer factor of a least-squares line through ``log ‖∂L/∂h_l‖``, from the last
        hidden layer back to layer ``first`` (:func:`~vgcourse.probes.layers.fitted_decay_factor`).
    """
    hidden = len(model) - 1 if isinstance(model, DeepMLP) else None
    if isinstance(first, bool) or not isinstance(first, int) or first < 1 or (hidden is not None and first >= hidden):
        allowed = f"1 to {hidden - 1}" if hidden else "at least 1"
        raise ValueError(f"first must be a hidden layer before the last one ({allowed}), got {first!r}")
    return fitted_decay_factor(hidden_gradient_norms(model, x, y)[first - 1:][::-1])
