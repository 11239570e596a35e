"""Backpropagation through time, one step at a time: the gradient that reaches each hidden state.

``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` run the whole sequence in one fused call, so the hidden
state of step ``t`` never appears as a tensor autograd can differentiate with respect to. These
functions unroll a :class:`~vgcourse.models.SequenceModel`'s core step by step with the core's
*own* weights (an ``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell`` that shares the core's
parameters), so every ``h_t`` is a tensor in the autograd graph and
``‖∂L/∂h_t‖`` can be read off for each ``t``. :func:`gru_step` writes one GRU step out by hand,
in PyTorch's form or in Cho et al.'s (2014), to show which one ``nn.GRU`` computes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vgcourse.models import SequenceModel
from vgcourse.training import task_loss


def _check(model: object, x: object, y: object = None, needs_y: bool = False) -> None:
    if not isinstance(model, SequenceModel):
        raise TypeError(
            f"model must be a vgcourse.models.SequenceModel (from sequence_model), got {type(model).__name__}"
        )
    if model.core.num_layers != 1:
        raise ValueError(f"only single-layer cores can be unrolled, got num_layers={model.core.num_layers}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[2] != model.core.input_size or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"x must have shape (batch, time, {model.core.input_size}) with batch, time >= 1, "
            f"got {tuple(x.shape)}"
        )
    if needs_y:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a tensor, got {type(y).__name__}")
        if len(y) != len(x):
            raise ValueError(f"x and y hold different numbers of examples: {len(x)} and {len(y)}")


def _cell_sharing_weights(core: nn.RNNBase) -> nn.RNNCellBase:
    """An ``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell`` whose parameters *are* the core's
    layer-0 parameters (the same tensors, so gradients flow to the core)."""
    sizes = (core.input_size, core.hidden_size)
    # The cell's own random initial weights are replaced at once; fork the RNG so that building
    # it leaves the caller's global random state untouched.
    with torch.random.fork_rng(devices=[]):
        if isinstance(core, nn.LSTM):
            cell: nn.RNNCellBase = nn.LSTMCell(*sizes, bias=core.bias)
        elif isinstance(core, nn.GRU):
            cell = nn.GRUCell(*sizes, bias=core.bias)
        else:
            cell = nn.RNNCell(*sizes, bias=core.bias, nonlinearity=core.nonlinearity)
    cell.weight_ih, cell.weight_hh = core.weight_ih_l0, core.weight_hh_l0
    if core.bias:
        cell.bias_ih, cell.bias_hh = core.bias_ih_l0, core.bias_hh_l0
    return cell


def unrolled_states(model: SequenceModel, x: Tensor) -> tuple[list[Tensor], Tensor]:
    """Run ``model`` on ``x`` one time step at a time, keeping every hidden state in the graph.

    Args:
        model: a single-layer :class:`~vgcourse.models.SequenceModel` without projections.
        x: inputs of shape ``(batch, time, input_size)``.

    Returns:
        ``(states, output)``: the hidden states ``h_1 ... h_T`` (each ``(batch, hidden_size)``;
        for an LSTM the output state ``h_t``, not the cell ``c_t``) and the model's output,
        equal to ``model(x)``.
    """
    _check(model, x)
    core = model.core
    if getattr(core, "proj_size", 0):
        raise ValueError(f"LSTM projections are not supported, got proj_size={core.proj_size}")
    x = x.to(device=core.weight_ih_l0.device, dtype=core.weight_ih_l0.dtype)
    zeros = x.new_zeros(len(x), core.hidden_size)
    cell = _cell_sharing_weights(core)
    lstm = isinstance(core, nn.LSTM)
    h, c = zeros, zeros
    states = []
    for t in range(x.shape[1]):
        if lstm:
            h, c = cell(x[:, t], (h, c))
        else:
            h = cell(x[:, t], h)
        states.append(h)
    return states, model.readout(states[-1])


def hidden_state_gradients(model: SequenceModel, x: Tensor, y: Tensor) -> list[float]:
    """L2 norm of ``∂loss/∂h_t`` for each hidden state ``h_1 ... h_T`` on the batch ``(x, y)``.

    The loss is read from ``h_T`` only, so ``∂loss/∂h_t`` is the signal that backpropagation
    through time carries ``T - t`` steps back. One forward and backward pass with the course's
    task loss; the parameters' ``.grad`` fields are left as they were.

    Args:
        model: a single-layer :class:`~vgcourse.models.SequenceModel`.
        x: inputs of shape ``(batch, time, input_size)``.
        y: targets for the batch (float for regression, int64 class indices otherwise).

    Returns:
        ``T`` floats, ``‖∂loss/∂h_t‖`` for ``t = 1 ... T`` (the norm over the whole batch).
    """
    _check(model, x, y, needs_y=True)
    states, output = unrolled_states(model, x)
    grads = torch.autograd.grad(task_loss(output, y.to(output.device)), states)
    return [float(g.norm()) for g in grads]


RESET_PLACES = ("after", "before")
"""Where :func:`gru_step` applies the reset gate: ``"after"`` the recurrent matrix product, as
``nn.GRU`` and cuDNN do, or ``"before"`` it, as Cho et al. (2014) write the GRU."""


def gru_step(core: nn.GRU, x: Tensor, h: Tensor, reset: str = "after") -> Tensor:
    """One step of ``core``'s layer 0 written out by hand, with ``core``'s own weights.

    With reset gate ``r``, update gate ``z`` and PyTorch's gate order (r, z, n) in the weights,
    the new state is ``(1 - z) ⊙ n + z ⊙ h`` where the candidate ``n`` is

    * ``reset="after"``:  ``tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`` — what ``nn.GRU`` computes;
    * ``reset="before"``: ``tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)`` — Cho et al. (2014).

    Args:
        core: a single-layer ``nn.GRU`` with biases.
        x: inputs at one time step, ``(batch, input_size)``.
        h: the previous hidden state, ``(batch, hidden_size)``.
        reset: ``"after"`` or ``"before"`` (:data:`RESET_PLACES`).

    Returns:
        the new hidden state, ``(batch, hidden_size)``.
    """
    if not isinstance(core, nn.GRU):
        raise TypeError(f"core must be a torch.nn.GRU, got {type(core).__name__}")
    if core.num_layers != 1 or not core.bias:
        raise ValueError(f"core must have one layer and biases, got num_layers={core.num_layers}, bias={core.bias}")
    if reset not in RESET_PLACES:
        raise ValueError(f"unknown reset place {reset!r}; choose one of {list(RESET_PLACES)}")
    for name, value, size in (("x", x, core.input_size), ("h", h, core.hidden_size)):
        if not isinstance(value, Tensor) or value.dim() != 2 or value.shape[1] != size:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a tensor of shape (batch, {size}), got {shape}")
    if len(x) != len(h):
        raise ValueError(f"x and h hold different batch sizes: {len(x)} and {len(h)}")
    w_ir, w_iz, w_in = core.weight_ih_l0.chunk(3)
    w_hr, w_hz, w_hn = core.weight_hh_l0.chunk(3)
    b_ir, b_iz, b_in = core.bias_ih_l0.chunk(3)
    b_hr, b_hz, b_hn = core.bias_hh_l0.chunk(3)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    if reset == "after":
        n = torch.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    else:
        n = torch.tanh(x @ w_in.T + b_in + (r * h) @ w_hn.T + b_hn)
    return (1 - z) * n + z * h
