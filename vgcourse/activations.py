"""Activation functions by name, their analytic derivatives, and the bound on each derivative.

The bound is the heart of the vanishing-gradient story: backpropagation multiplies one
derivative factor per layer, so a derivative that never exceeds 1/4 (sigmoid) shrinks the
gradient at least fourfold per layer unless the weights make up for it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.validation import check_int, check_number, is_real

LEAKY_SLOPE = 0.01
"""Slope of Leaky ReLU on the negative side (PyTorch's default)."""

ELU_ALPHA = 1.0
"""ELU's ``α`` (Clevert, Unterthiner & Hochreiter 2016; PyTorch's default): ``ELU(x) = α(eˣ − 1)``
for ``x ≤ 0``, so the outputs approach ``−α`` on the far negative side."""

SELU_ALPHA = 1.6732632423543772848170429916717
"""SELU's ``α`` (Klambauer et al. 2017): ``SELU(x) = λα(eˣ − 1)`` for ``x ≤ 0``."""

SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's ``λ``: ``SELU(x) = λx`` for ``x > 0``. ``α`` and ``λ`` are the values ``nn.SELU``
hard-codes (PyTorch does not expose them), the solution of ``E[SELU(z)] = 0`` and
``E[SELU(z)²] = 1`` for ``z ~ N(0, 1)``: a standard normal pre-activation gives an output of mean
0 and variance 1, the fixed point of a self-normalizing network."""


def _normal_pdf(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


@dataclass(frozen=True)
class Activation:
    """One activation: the function, its analytic derivative, and the derivative's supremum.

    Attributes:
        name: the name used throughout the course (``"sigmoid"``, ``"tanh"``, ...).
        function: elementwise ``f(x)``.
        derivative: elementwise ``f'(x)``, written out analytically (not autograd).
        derivative_sup: ``sup_x f'(x)``.
        sup_at: where the supremum is attained, or ``None`` when it is attained on a whole
            interval (ReLU and Leaky ReLU reach it for every ``x > 0``).
        module: a fresh ``torch.nn`` module computing the same function.
    """

    name: str
    function: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    derivative_sup: float
    sup_at: float | None
    module: Callable[[], nn.Module]


def _sigmoid_derivative(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _tanh_derivative(x: Tensor) -> Tensor:
    return 1 - torch.tanh(x) ** 2


def _relu_derivative(x: Tensor) -> Tensor:
    # PyTorch (like most frameworks) uses 0 at the kink x = 0.
    return (x > 0).to(x.dtype)


def _leaky_relu_derivative(x: Tensor) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, LEAKY_SLOPE))


def _gelu_derivative(x: Tensor) -> Tensor:
    # GELU(x) = x Φ(x), so GELU'(x) = Φ(x) + x φ(x).
    return _normal_cdf(x) + x * _normal_pdf(x)


def _elu_derivative(x: Tensor) -> Tensor:
    # At x = 0 PyTorch takes the negative side's α e⁰ = α (equal to the positive side's 1 when α = 1).
    return torch.where(x > 0, torch.ones_like(x), ELU_ALPHA * torch.exp(x))


def _selu_derivative(x: Tensor) -> Tensor:
    # λ for x > 0, λα eˣ otherwise; at x = 0 PyTorch takes the negative side's λα.
    return SELU_SCALE * torch.where(x > 0, torch.ones_like(x), SELU_ALPHA * torch.exp(x))


# GELU'' = φ(x)(2 - x²) vanishes at x = √2, where GELU' takes its maximum.
_GELU_SUP_AT = math.sqrt(2.0)
_GELU_SUP = float(_gelu_derivative(torch.tensor(_GELU_SUP_AT, dtype=torch.float64)))

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid_derivative, 0.25, 0.0, nn.Sigmoid),
    "tanh": Activation("tanh", torch.tanh, _tanh_derivative, 1.0, 0.0, nn.Tanh),
    "relu": Activation("relu", torch.relu, _relu_derivative, 1.0, None, nn.ReLU),
    "leaky_relu": Activation(
        "leaky_relu",
        lambda x: F.leaky_relu(x, LEAKY_SLOPE),
        _leaky_relu_derivative,
        1.0,
        None,
        lambda: nn.LeakyReLU(LEAKY_SLOPE),
    ),
    "gelu": Activation("gelu", F.gelu, _gelu_derivative, _GELU_SUP, _GELU_SUP_AT, nn.GELU),
    # ELU' = 1 for x > 0 and α eˣ ≤ α below: with α = 1 the supremum 1 is reached on all of x ≥ 0.
    "elu": Activation(
        "elu",
        lambda x: F.elu(x, ELU_ALPHA),
        _elu_derivative,
        max(1.0, ELU_ALPHA),
        None if ELU_ALPHA <= 1 else 0.0,
        lambda: nn.ELU(ELU_ALPHA),
    ),
    # SELU' = λ for x > 0 and λα eˣ below: the largest slope, λα ≈ 1.76, sits just left of 0.
    "selu": Activation("selu", F.selu, _selu_derivative, SELU_SCALE * SELU_ALPHA, 0.0, nn.SELU),
}


ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.GELU: "gelu",
    nn.ELU: "elu",
    nn.SELU: "selu",
}
"""The module classes that count as activations, and the course's name for each."""

OTHER_ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.SiLU: "silu", nn.Hardswish: "hardswish", nn.Mish: "mish",
    nn.CELU: "celu", nn.Softplus: "softplus", nn.ReLU6: "relu6", nn.PReLU: "prelu", nn.Hardtanh: "hardtanh",
    nn.Hardsigmoid: "hardsigmoid", nn.Softsign: "softsign", nn.RReLU: "rrelu",
}
"""Elementwise activation modules of PyTorch outside the course, and a name for each."""

_ACTIVATION_WORDS = ("gelu", "silu", "swish", "mish", "relu", "sigmoid", "tanh", "activation")
"""Words in the class name of a library's own activation module (Hugging Face's
``NewGELUActivation``, ``QuickGELUActivation``, ...)."""

FUNCTIONAL_ACTIVATIONS: dict[object, str] = {
    **dict.fromkeys((F.relu, torch.relu, torch.Tensor.relu, F.relu_, torch.relu_, torch.Tensor.relu_), "relu"),
    **dict.fromkeys((torch.sigmoid, F.sigmoid, torch.Tensor.sigmoid, torch.sigmoid_, torch.Tensor.sigmoid_), "sigmoid"),
    **dict.fromkeys((torch.tanh, F.tanh, torch.Tensor.tanh, torch.tanh_, torch.Tensor.tanh_), "tanh"),
    F.leaky_relu: "leaky_relu", F.gelu: "gelu", F.silu: "silu", F.hardswish: "hardswish", F.mish: "mish",
    F.elu: "elu", F.selu: "selu", torch.selu: "selu", F.relu6: "relu6", F.softplus: "softplus",
}
"""Activations called as functions (``F.relu(x)``, ``x.tanh()``), and the kind of each."""

DEAD_KINDS = frozenset({"relu", "relu6"})
"""Activations whose output is exactly 0 for every negative input: a unit can be dead."""


def activation_kind(module: nn.Module) -> str | None:
    """The kind of activation ``module`` is (``"relu"``, ``"silu"``, ...), or ``None``.

    The course's classes and PyTorch's (subclasses too) by class; a class from elsewhere with
    no parameters by a word in its name (``"gelu"``, ``"activation"``, ...): ``"other"``, or
    ``"relu"`` for a name with "relu" (zero for negative inputs). Functional activations
    (``F.relu`` inside a ``forward``) are not modules and cannot be seen.
    """
    for table in (ACTIVATION_MODULES, OTHER_ACTIVATION_MODULES):
        for cls, kind in table.items():
            if isinstance(module, cls):
                return kind
    name = type(module).__name__.lower()
    if type(module).__module__.startswith("torch.") or next(module.parameters(recurse=False), None) is not None:
        return None  # PyTorch's other modules are not activations; nor is a module with weights
    if any(word in name for word in _ACTIVATION_WORDS):
        return "relu" if name.startswith("relu") and "leaky" not in name else "other"
    return None


OUTPUT_RANGES: dict[str, tuple[float, float]] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
"""The activations bounded by an asymptote on both sides, and their output range ``(low, high)``:
the ones that saturate."""


def get_activation(name: str) -> Activation:
    """Return the :class:`Activation` called ``name``.

    Raises:
        ValueError: if ``name`` is not one of the course's activations.
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _as_tensor(x: Tensor | float, what: str) -> Tensor:
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{what} must be a floating-point tensor, got dtype {x.dtype}")
        return x
    if is_real(x):
        return torch.tensor(float(x), dtype=torch.float64)
    raise TypeError(f"{what} must be a float or a floating-point tensor, got {type(x).__name__}")


def activate(name: str, x: Tensor | float) -> Tensor:
    """Apply the activation called ``name`` elementwise to ``x``."""
    return get_activation(name).function(_as_tensor(x, "x"))


def derivative(name: str, x: Tensor | float) -> Tensor:
    """The analytic derivative ``f'(x)`` of the activation called ``name``, elementwise."""
    return get_activation(name).derivative(_as_tensor(x, "x"))


def derivative_bound(name: str) -> float:
    """The supremum of ``f'(x)`` over all real ``x``: 1/4 for sigmoid, 1 for tanh and ReLU."""
    return get_activation(name).derivative_sup


def product_bound(name: str, depth: int) -> float:
    """Upper bound ``(sup f')**depth`` on the product of ``depth`` derivative factors.

    This bounds only the activation part of the chain rule; the weight matrices multiply in
    too, which is why initialization matters (notebook 05).
    """
    check_int(depth, "depth", minimum=0)
    return derivative_bound(name) ** depth


# Named thresholds for "saturated": the output is within this distance of an asymptote.
SATURATION_MARGIN = 0.05
"""Sigmoid output below 0.05 or above 0.95; tanh output beyond ±0.95."""


def saturated_mask(name: str, outputs: Tensor, margin: float = SATURATION_MARGIN) -> Tensor:
    """Boolean mask of units whose *output* lies within ``margin`` of an asymptote.

    Only sigmoid (asymptotes 0 and 1) and tanh (asymptotes -1 and 1) saturate on both sides.
    Where they do, ``f'`` is small: at margin 0.05 sigmoid' < 0.048 and tanh' < 0.098.

    Raises:
        ValueError: for an activation without two asymptotes or a margin outside (0, 0.5).
    """
    if name not in OUTPUT_RANGES:
        get_activation(name)  # a clear error for unknown names first
        raise ValueError(
            f"saturation is defined for 'sigmoid' and 'tanh', not {name!r}; "
            "for ReLU-family units measure dead units instead"
        )
    check_number(margin, "margin", 0, 0.5)
    outputs = _as_tensor(outputs, "outputs")
    if name == "sigmoid":
        return (outputs < margin) | (outputs > 1 - margin)
    return outputs.abs() > 1 - margin


def saturated_fraction(name: str, outputs: Tensor, margin: float = SATURATION_MARGIN) -> float:
    """Fraction of entries of ``outputs`` (activations of ``name``) that are saturated."""
    mask = saturated_mask(name, outputs, margin)
    if mask.numel() == 0:
        raise ValueError("outputs is empty; pass at least one activation value")
    return float(mask.float().mean())


@dataclass(frozen=True)
class NormalMoments:
    """Expectations of an activation over a Gaussian pre-activation ``z ~ N(mean, variance)``.

    Attributes:
        mean: ``E[f(z)]``.
        second_moment: ``E[f(z)²]``; with zero-mean weights and ``fan_in · Var(w) = 1`` (LeCun)
            it is the variance of the next layer's pre-activations.
        variance: ``Var(f(z)) = E[f(z)²] − E[f(z)]²``.
        slope_square: ``E[f'(z)²]``, the activation's factor in the backward variance gain.
    """

    mean: float
    second_moment: float
    variance: float
    slope_square: float


_QUADRATURE_NODES = 200
"""Gauss–Legendre nodes on each side of 0 (every course activation is smooth except at 0)."""

_NORMAL_REACH = 12.0
"""The Gaussian is integrated over mean ± 12 standard deviations: the tails beyond weigh < 1e-32."""


@functools.cache
def _legendre_rule() -> tuple[Tensor, Tensor]:
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)  # on [-1, 1]
    return torch.tensor(nodes, dtype=torch.float64), torch.tensor(weights, dtype=torch.float64)


def normal_moments(name: str, variance: float = 1.0, mean: float = 0.0) -> NormalMoments:
    """:class:`NormalMoments` of the activation ``name`` for ``z ~ N(mean, variance)``.

    Computed in float64 by Gauss–Legendre quadrature on either side of 0, where the course's
    activations have their kink, so the result is accurate to about 1e-12: SELU gives mean 0 and
    variance 1 for a standard normal ``z`` (Klambauer et al. 2017).

    Raises:
        ValueError: for an unknown activation, a variance that is not positive and finite, or a
            mean that is not finite.
    """
    activation = get_activation(name)
    check_number(variance, "variance", 0)
    check_number(mean, "mean")
    std = math.sqrt(variance)
    low, high = mean - _NORMAL_REACH * std, mean + _NORMAL_REACH * std
    cuts = [low, 0.0, high] if low < 0 < high else [low, high]
    nodes, weights = _legendre_rule()
    totals = torch.zeros(3, dtype=torch.float64)
    for a, b in zip(cuts, cuts[1:]):
        z = (b - a) / 2 * nodes + (a + b) / 2
        density = weights * (b - a) / 2 * _normal_pdf((z - mean) / std) / std
        f, slope = activation.function(z), activation.derivative(z)
        totals += torch.stack([(density * f).sum(), (density * f * f).sum(), (density * slope * slope).sum()])
    first, second, slope_square = (float(t) for t in totals)
    return NormalMoments(first, second, second - first**2, slope_square)
