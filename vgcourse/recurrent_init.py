"""Initializations of a recurrent model's core, applied in place after it is built: the LSTM's
forget-gate bias, identity recurrent weights (the IRNN) and orthogonal recurrent weights at a gain.

Each function changes a :class:`~vgcourse.models.SequenceModel`'s single-layer core and returns
the model, so calls chain onto ``sequence_model``:

    lstm = forget_bias_(sequence_model(2, 32, 1, cell="lstm"), 1.0)
    irnn = identity_recurrence_(sequence_model(2, 32, 1, cell="rnn", nonlinearity="relu"))
"""

from __future__ import annotations

import torch
from torch import nn

from vgcourse.initialization import orthogonal_matrix
from vgcourse.models import SequenceModel
from vgcourse.validation import check_int, check_number

FORGET_GATE = 1
"""Index of the forget gate among ``nn.LSTM``'s four gate blocks (input, forget, cell, output)."""


def _core(model: object, kind: type[nn.RNNBase] | None = None) -> nn.RNNBase:
    if not isinstance(model, SequenceModel):
        raise TypeError(f"model must be a vgcourse.models.SequenceModel (from sequence_model), got {type(model).__name__}")
    core = model.core
    if kind is not None and not isinstance(core, kind):
        raise ValueError(f"this initialization needs an {kind.__name__} core, got {type(core).__name__}")
    if core.num_layers != 1 or not core.bias:
        raise ValueError(f"only single-layer cores with biases are supported, got num_layers={core.num_layers}, bias={core.bias}")
    return core


@torch.no_grad()
def forget_bias_(model: SequenceModel, value: float = 1.0) -> SequenceModel:
    """Give the LSTM's forget gate the bias ``value``: ``f_t = σ(value + W_f [h, x])``.

    PyTorch draws both of the gate's biases uniformly from ±1/√H, so at initialization the gate
    is about σ(0) = ½ and the cell halves its memory every step. Gers et al. (2000) and
    Jozefowicz et al. (2015) set it to 1 (σ(1) ≈ 0.73). ``bias_ih``'s forget slice becomes
    ``value`` and ``bias_hh``'s 0, so the gate's total bias is exactly ``value``.

    Args:
        model: a single-layer LSTM ``SequenceModel``.
        value: the forget gate's bias (any finite number).

    Returns:
        ``model``, changed in place.
    """
    core = _core(model, nn.LSTM)
    check_number(value, "value")
    h = core.hidden_size
    core.bias_ih_l0[FORGET_GATE * h : (FORGET_GATE + 1) * h] = float(value)
    core.bias_hh_l0[FORGET_GATE * h : (FORGET_GATE + 1) * h] = 0.0
    return model


@torch.no_grad()
def identity_recurrence_(model: SequenceModel, gain: float = 1.0) -> SequenceModel:
    """Set a plain RNN's recurrent weights to ``gain`` × identity and its biases to 0.

    With a ReLU nonlinearity (``sequence_model(..., cell="rnn", nonlinearity="relu")``) this is the
    IRNN of Le, Jaitly & Hinton (2015): with no input, the state is copied unchanged from step to
    step, and so is the gradient of every active unit.

    Args:
        model: a single-layer ``"rnn"`` ``SequenceModel``.
        gain: the recurrent matrix's one singular value (> 0); above 1 the state and the backward
            signal of active units grow by ``gain`` per step.

    Returns:
        ``model``, changed in place.
    """
    core = _core(model, nn.RNN)
    check_number(gain, "gain", 0)
    core.weight_hh_l0.copy_(torch.eye(core.hidden_size) * float(gain))
    core.bias_ih_l0.zero_()
    core.bias_hh_l0.zero_()
    return model


@torch.no_grad()
def orthogonal_recurrence_(model: SequenceModel, gain: float = 1.0, seed: int = 0) -> SequenceModel:
    """Give every gate's recurrent matrix a random orthogonal matrix times ``gain``.

    Every singular value of each gate's ``W_hh`` block is then exactly ``gain``
    (``torch.nn.init.orthogonal_``): its spectral norm is ``gain``. Pascanu, Mikolov & Bengio (2013)
    show that a largest singular value above 1 is what lets gradients explode over time steps.
    Input weights and biases are left as they are.

    Args:
        model: a single-layer ``SequenceModel`` of any cell.
        gain: the spectral norm of each gate's recurrent matrix (> 0).
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        ``model``, changed in place.
    """
    core = _core(model)
    check_number(gain, "gain", 0)
    check_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    h = core.hidden_size
    for block in core.weight_hh_l0.split(h):
        block.copy_(orthogonal_matrix((h, h), gain, generator))
    return model
