"""Exercise 05, initialization: the Xavier and He standard deviations, a layer filled with them, and the
variance gain per layer predicted, then measured."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vgcourse.data import digits
from vgcourse.grading.cases import random_int
from vgcourse.grading.calls import ex05 as calls
from vgcourse.grading.calls.ex05 import given_layer
from vgcourse.grading.question import Case, Passed, Question, close_numbers, positive_number
from vgcourse.models import deep_mlp
from vgcourse.probes.layers import fitted_decay_factor
from vgcourse.probes.variance import layer_variances, weight_variance

SCHEMES = ("xavier", "he")

# How many standard errors a sample statistic may stray before a check fails. For the normal
# approximation of each statistic, 6 standard errors are exceeded with probability 2e-9.
_STANDARD_ERRORS = 6.0


def _std(case: Case) -> float:
    return math.sqrt(weight_variance(case["scheme"], case["fan_in"], case["fan_out"]))


# ---- init_std ----------------------------------------------------------------------------------


def _std_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for scheme in SCHEMES:
        few, many = random_int(generator, 1, 20), random_int(generator, 100, 4000)
        cases.append({"scheme": scheme, "fan_in": few, "fan_out": many})
        cases.append({"scheme": scheme, "fan_in": many, "fan_out": few})
        n = random_int(generator, 1, 1000)
        cases.append({"scheme": scheme, "fan_in": n, "fan_out": n})
    cases.append({"scheme": "he", "fan_in": 1, "fan_out": 1})
    return cases


# ---- init_linear_ ------------------------------------------------------------------------------


def _linear_cases(generator: torch.Generator) -> list[Case]:
    def case(scheme: str, fan_in: tuple[int, int], fan_out: tuple[int, int], bias: bool = True) -> Case:
        return {"scheme": scheme, "fan_in": random_int(generator, *fan_in), "fan_out": random_int(generator, *fan_out),
                "bias": bias, "seed": random_int(generator, 0, 2**31 - 1)}

    # Every layer has at least 200 x 200 weights, so the sample statistics are sharp. Fan-in and
    # fan-out differ by a factor of at least 2 in the first three, in both directions: a wrong
    # fan changes the standard deviation by at least sqrt(2) there.
    return [
        case("xavier", (200, 260), (600, 800)),
        case("he", (200, 260), (600, 800)),
        case("he", (600, 800), (200, 260)),
        case("xavier", (200, 400), (200, 400), bias=False),
    ]


def _expected_linear(case: Case) -> dict[str, Any]:
    return {"std": _std(case), "default_weight": given_layer(case).weight.detach().clone()}


def _compare_linear(got: Any, want: dict[str, Any], case: Case) -> str | None:
    weight, std = got["weight"], want["std"]
    shape = (case["fan_out"], case["fan_in"])
    if not isinstance(weight, Tensor) or tuple(weight.shape) != shape:
        return f"layer.weight should still be a tensor of shape {shape} (fan_out, fan_in)"
    if not got["same_parameters"]:
        return ("fill the existing parameters in place (inside torch.no_grad()); don't assign new "
                "tensors or Parameters to layer.weight / layer.bias")
    if not got["requires_grad"]:
        return "the parameters must still require gradients after initialization"
    if torch.equal(weight, want["default_weight"].to(weight.dtype)):
        return "the weights are unchanged: still PyTorch's default initialization"
    w = weight.to(torch.float64).flatten()
    if not bool(torch.isfinite(w).all()):
        return "some weights are NaN or infinite"
    n = w.numel()
    mean, sample_std = float(w.mean()), float(w.std())
    if abs(mean) > _STANDARD_ERRORS * std / math.sqrt(n):
        return f"the weights should have mean 0, got mean {mean:.3g} (std {sample_std:.3g})"
    # The sample std of n draws has relative standard error sqrt((kurtosis - 1) / 4n): 1 / sqrt(2n) for a
    # normal distribution, less for a uniform one; the normal's bound covers both.
    if abs(sample_std / std - 1) > _STANDARD_ERRORS / math.sqrt(2 * n):
        formula = "sqrt(2 / (fan_in + fan_out))" if case["scheme"] == "xavier" else "sqrt(2 / fan_in)"
        return (f"expected the weights' standard deviation to be {formula} = {std:.5g}, "
                f"got {sample_std:.5g} (ratio {sample_std / std:.3f})")
    # Normal (PyTorch's *_normal_) or uniform (Glorot & Bengio's own scheme, *_uniform_): the variance
    # argument needs only mean 0 and the standard deviation, so the shape of the distribution is free.
    if case["bias"]:
        bias = got["bias"]
        if not isinstance(bias, Tensor) or tuple(bias.shape) != (case["fan_out"],):
            return f"layer.bias should still be a tensor of shape ({case['fan_out']},)"
        if bool((bias != 0).any()):
            return f"the bias should be all zeros, got values like {float(bias[(bias != 0)][0]):.3g}"
    elif got["bias"] is not None:
        return "the layer had no bias (bias=False); leave it without one"
    return None


# ---- layer_gain --------------------------------------------------------------------------------

GAIN_SETUPS = (("relu", "default"), ("relu", "xavier"), ("relu", "he"), ("tanh", "default"))
"""(activation, init) pairs where notebook 05's small-signal theory holds; a case set has all four and one
Leaky ReLU. Not tanh with Xavier or He: there saturation bends the prediction (notebook 05 shows how)."""

GAIN_DEPTH = 20
"""Layers of the network the check measures in, as notebook 05 does: the gain is fitted through 2..19."""

GAIN_TOLERANCE = 0.25
"""How far the prediction may be from the measured gain (the geometric mean of the forward and backward
gains), relative. At widths 96-256 the theory's prediction strays from it by at most about 11 % (200 case
sets); a missing factor 1/2 (ReLU) or 1/3 (the default init) is 50 % or more off."""

GAIN_WIDTHS = (96, 256)
"""The widths a case draws from: narrower networks' measured gains scatter more around the theory."""


def measured_gains(case: Case) -> tuple[float, float]:
    """The variance gain per hidden layer of the case's network, fitted through layers 2 to 19, forward
    (``signal_std``) and backward (``gradient_std``), on 256 digits at initialization; the check grades
    a prediction against their geometric mean."""
    data = digits(seed=case["data_seed"])
    model = deep_mlp(data.n_features, data.n_classes, depth=GAIN_DEPTH, width=case["width"],
                     activation=case["activation"], init=case["init"], seed=case["seed"])
    v = layer_variances(model, data.x_train[:256], data.y_train[:256])
    forward = fitted_decay_factor(v.signal_std[1:-1]) ** 2
    backward = fitted_decay_factor(v.gradient_std[1:-1][::-1]) ** 2
    return forward, backward


def _gain_cases(generator: torch.Generator) -> list[Case]:
    setups = list(GAIN_SETUPS) + [("leaky_relu", ("default", "he")[random_int(generator, 0, 1)])]
    order = torch.randperm(len(setups), generator=generator).tolist()
    return [{"activation": setups[i][0], "init": setups[i][1], "width": random_int(generator, *GAIN_WIDTHS),
             "seed": random_int(generator, 0, 10**6), "data_seed": random_int(generator, 0, 99)} for i in order]


def _compare_gain(got: Any, measured: tuple[float, float], case: Case) -> str | Passed:
    got = positive_number(got, "the variance gain per layer")
    if isinstance(got, str):
        return got
    forward, backward = measured
    gain = math.sqrt(forward * backward)
    what = f"{case['activation']}, {case['init']} init, width {case['width']}"
    if abs(got / gain - 1) > GAIN_TOLERANCE:
        return (f"you predicted {got:.4g}; measured in a {GAIN_DEPTH}-layer network ({what}): {gain:.3g} per layer "
                f"({forward:.3g} forward, {backward:.3g} backward); a prediction must be within "
                f"{GAIN_TOLERANCE:.0%} of it")
    return Passed(f"{what}: predicted {got:.3g}, measured {gain:.3g} ({forward:.3g} forward, {backward:.3g} backward)")


QUESTIONS = (
    Question(
        answer=calls.INIT_STD,
        points=2,
        task="return the weight standard deviation of Xavier (Glorot normal) or He (Kaiming normal, "
             "fan_in, ReLU) initialization",
        hint="Xavier: Var(w) = 2 / (fan_in + fan_out); He: Var(w) = 2 / fan_in. Return the standard "
             "deviation, the square root of the variance.",
        cases=_std_cases,
        expected=_std,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-6, atol=0.0),
    ),
    Question(
        answer=calls.INIT_LINEAR,
        points=2,
        task="fill layer.weight in place with zero-mean draws of the scheme's std (normal or uniform) "
             "and set layer.bias to 0",
        hint="nn.Linear(fan_in, fan_out).weight has shape (fan_out, fan_in). Inside torch.no_grad(), "
             "layer.weight.normal_(0.0, std) draws in place (or uniform_(-a, a) with a = sqrt(3)·std); zero "
             "the bias only if the layer has one (layer.bias is None otherwise).",
        cases=_linear_cases,
        expected=_expected_linear,
        compare=_compare_linear,
    ),
    Question(
        answer=calls.LAYER_GAIN,
        points=2,
        task="predict the factor by which one hidden layer of deep_mlp(width=width, activation=activation, "
             "init=init) multiplies the signal's variance; the check measures it in a 20-layer network, "
             "forward and backward, and wants your number within 25 % of the measurement",
        hint="One layer multiplies the variance by n·Var(w) times the activation's share E[f(z)²]/Var(z) "
             "(notebook 05, 'Forward'), with n = width. init_std gives Var(w) for Xavier and He; PyTorch's "
             "default is uniform on ±1/sqrt(n). tanh is close to the identity near 0, ReLU keeps half of a "
             "symmetric input's second moment, and Leaky ReLU's negative slope is 0.01.",
        cases=_gain_cases,
        expected=measured_gains,
        compare=_compare_gain,
    ),
)
