"""Initializations applied to a model that is already built, in place: orthogonal weights, plain
normal draws, one constant for every weight, LSUV's data-driven rescaling, and sigmoid biases
that cancel the outputs' mean.

Each function changes the ``nn.Linear`` layers of a model (``vgcourse.models.linear_layers``, in
forward order for a course MLP) and returns the model, so calls chain onto ``deep_mlp``:

    model = orthogonal_(deep_mlp(64, 10, depth=50, width=32, activation="tanh"), gain=1.0, first_gain=0.1)
    model = lsuv_(orthogonal_(deep_mlp(64, 10, depth=50, width=32, activation="relu")), data.x_train[:256])
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from vgcourse.models import DeepMLP, Dense, linear_layers
from vgcourse.validation import check_int, check_number


def _linears(model: object) -> list[nn.Linear]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = [module for module in linear_layers(model) if isinstance(module, nn.Linear)]
    if not found:
        raise ValueError(f"model has no nn.Linear layers to initialize ({type(model).__name__})")
    return found


def orthogonal_matrix(shape: torch.Size | tuple[int, int], gain: float, generator: torch.Generator) -> torch.Tensor:
    """A random float64 matrix of ``shape`` whose every singular value is ``gain``
    (``torch.nn.init.orthogonal_``), drawn from ``generator``; the caller validates ``gain``."""
    weight = torch.empty(shape, dtype=torch.float64)
    nn.init.orthogonal_(weight, gain=float(gain), generator=generator)
    return weight


@torch.no_grad()
def orthogonal_(model: nn.Module, gain: float = 1.0, first_gain: float | None = None, seed: int = 0) -> nn.Module:
    """Give every ``nn.Linear`` of ``model`` a random orthogonal weight matrix times a gain, and zero biases.

    Every singular value of each weight matrix is then exactly its gain (``torch.nn.init.orthogonal_``;
    a non-square matrix has orthonormal rows or columns). Saxe, McClelland & Ganguli (2014) showed that
    such weights train deep linear networks in a time independent of depth.

    Args:
        model: any module with ``nn.Linear`` layers (a course ``deep_mlp``).
        gain: the singular value of every layer's weights (> 0): 1 for tanh, whose slope at 0 is 1.
        first_gain: a different gain for the first layer, the one that reads the input; ``None`` uses
            ``gain``. A small one (0.1 for unit-variance inputs) keeps the pre-activations small from
            the start.
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        ``model``, changed in place.
    """
    linears = _linears(model)
    check_number(gain, "gain", 0)
    if first_gain is not None:
        check_number(first_gain, "first_gain", 0)
    check_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    for i, linear in enumerate(linears):
        layer_gain = first_gain if i == 0 and first_gain is not None else gain
        linear.weight.copy_(orthogonal_matrix(linear.weight.shape, layer_gain, generator))
        if linear.bias is not None:
            linear.bias.zero_()
    return model


@torch.no_grad()
def normal_(model: nn.Module, std: float = 1.0, seed: int = 0) -> nn.Module:
    """Draw every weight of every ``nn.Linear`` of ``model`` from N(0, std²) and zero the biases.

    With ``std=1`` these are the weights ``torch.randn`` gives, the scale of a first MLP written from
    scratch (Karpathy's makemore, part 3) and far too large for a layer with many inputs.

    Args:
        model: any module with ``nn.Linear`` layers.
        std: the standard deviation of every weight (> 0).
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        ``model``, changed in place.
    """
    linears = _linears(model)
    check_number(std, "std", 0)
    check_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    for linear in linears:
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator, dtype=torch.float64) * float(std))
        if linear.bias is not None:
            linear.bias.zero_()
    return model


@torch.no_grad()
def constant_(model: nn.Module, value: float = 0.0) -> nn.Module:
    """Set every weight of every ``nn.Linear`` of ``model`` to ``value`` and every bias to 0.

    The classic mistake that symmetry breaking is about: with identical incoming weights, the units of
    a layer compute the same output and receive the same gradient, so training never tells them apart.

    Args:
        model: any module with ``nn.Linear`` layers.
        value: the one value of every weight (any finite number; 0 is "zero init").

    Returns:
        ``model``, changed in place.
    """
    linears = _linears(model)
    check_number(value, "value")
    for linear in linears:
        linear.weight.fill_(float(value))
        if linear.bias is not None:
            linear.bias.zero_()
    return model


class _Stop(Exception):
    """Raised by LSUV's hook once the layer it measures has run: the layers above need not."""


def _output_of(model: nn.Module, linear: nn.Linear, x: Tensor) -> Tensor:
    captured: list[Tensor] = []

    def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
        captured.append(output)
        raise _Stop

    handle = linear.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError("a layer of the model did not run in its forward pass; LSUV needs every nn.Linear to run")
    return captured[0]


def _normalize(linear: nn.Linear, output: Callable[[], Tensor], number: int, tolerance: float, iterations: int) -> None:
    for _ in range(iterations):
        variance = float(output().double().var())
        if not variance > 0 or variance == float("inf"):
            raise ValueError(f"the output of linear layer {number} has variance {variance} on x; "
                             f"LSUV can only rescale a layer whose output varies")
        if abs(variance - 1) < tolerance:
            return
        linear.weight.div_(variance ** 0.5)


@torch.no_grad()
def lsuv_(model: nn.Module, x: Tensor, tolerance: float = 0.1, max_iterations: int = 10) -> nn.Module:
    """LSUV, layer-sequential unit-variance init (Mishkin & Matas 2016): each layer's output gets variance 1 on ``x``.

    Layer by layer, from the input up, the output of each ``nn.Linear`` (its pre-activations) is measured
    on the batch ``x`` and the layer's weights are divided by its standard deviation, until the variance
    is within ``tolerance`` of 1 or ``max_iterations`` rescalings were made. Layers below are already
    rescaled when a layer is measured, so no formula for the activation's gain is needed. Mishkin & Matas
    start from orthogonal weights (:func:`orthogonal_`); any weights will do. An ``nn.Sequential`` (a
    course ``deep_mlp``) is walked once, its blocks' outputs carried up; any other model runs its forward
    pass up to the layer being measured.

    Args:
        model: a module whose ``nn.Linear`` layers all run in its forward pass (a course ``deep_mlp``).
        x: a batch of at least 2 inputs for ``model``.
        tolerance: how far from 1 a layer's output variance may stay, in (0, 1); the paper uses 0.1.
        max_iterations: rescalings per layer at most (>= 1); without biases one is exact.

    Returns:
        ``model``, changed in place.

    Raises:
        ValueError: if a layer's output has variance 0 (or not a finite one) on ``x``, so that no
            rescaling can give it variance 1.
    """
    linears = _linears(model)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor (a batch of inputs), got {type(x).__name__}")
    if x.dim() < 2 or len(x) < 2:
        raise ValueError(f"x must be a batch of at least 2 inputs, got shape {tuple(x.shape)}")
    if isinstance(model, DeepMLP) and tuple(x.shape[1:]) != (model.in_features,):
        raise ValueError(f"x must have shape (batch, {model.in_features}) for this model, got {tuple(x.shape)}")
    check_number(tolerance, "tolerance", 0, 1)
    check_int(max_iterations, "max_iterations", minimum=1)
    h = x.to(next(model.parameters()).device)
    if not isinstance(model, nn.Sequential):
        for number, linear in enumerate(linears, start=1):
            _normalize(linear, lambda: _output_of(model, linear, h), number, tolerance, max_iterations)
        return model
    number = 0
    for block in model:  # each block's input is final once the blocks below are rescaled: O(depth) passes
        for linear in _linears(block) if any(isinstance(m, nn.Linear) for m in block.modules()) else []:
            number += 1
            _normalize(linear, lambda: _output_of(block, linear, h), number, tolerance, max_iterations)
        h = block(h)
    return model


def centre_sigmoid_biases_(model: DeepMLP) -> DeepMLP:
    """Set the bias of every layer fed by a sigmoid layer to ``-W 1 / 2``, in place.

    A sigmoid's outputs have mean about 1/2, which ``W`` turns into a large constant offset of
    the next pre-activations. With ``b = -W 1 / 2`` the layer computes ``W (σ(z) - 1/2)``, and
    since ``σ(z) - 1/2 = tanh(z/2) / 2`` the network is exactly a tanh network with weights
    ``W / 4`` acting on ``z / 2``: with orthogonal weights of gain 4 (``init="orthogonal",
    weight_scale=4``), a tanh network with orthogonal gain 1 (notebook 05).

    Args:
        model: a course :class:`DeepMLP` with sigmoid activations and neither batch
            normalization nor residual layers. Layer 1's bias (fed by the input) is left as it is.

    Returns:
        ``model``, changed in place.

    Raises:
        ValueError: if ``model`` is not such a network.
    """
    if not isinstance(model, DeepMLP):
        raise ValueError(f"model must be a vgcourse.models.DeepMLP, got {type(model).__name__}")
    hidden = list(model)[:-1]
    for i, layer in enumerate(hidden, start=1):
        if not isinstance(layer, Dense) or not isinstance(layer.act, nn.Sigmoid):
            kind = type(getattr(layer, "act", layer)).__name__
            raise ValueError(f"layer {i} has activation {kind}; centred biases are for sigmoid layers (nn.Sigmoid)")
        if layer.residual or not isinstance(layer.norm, nn.Identity):
            raise ValueError(f"layer {i} is residual or batch-normalized; centred biases need plain sigmoid layers")
    with torch.no_grad():
        for linear in linear_layers(model)[1:]:
            linear.bias.copy_(-0.5 * linear.weight.sum(dim=1))
    return model
