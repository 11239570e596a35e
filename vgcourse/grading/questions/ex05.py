"""Exercise 05, initialization: the Xavier and He standard deviations, and a layer filled with them."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vgcourse.grading.cases import random_int
from vgcourse.grading.calls import ex05 as calls
from vgcourse.grading.calls.ex05 import given_layer
from vgcourse.grading.question import Case, Question, close_numbers
from vgcourse.probes.variance import weight_variance

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
    # The sample std of n normal draws has relative standard error 1 / sqrt(2 n).
    if abs(sample_std / std - 1) > _STANDARD_ERRORS / math.sqrt(2 * n):
        formula = "sqrt(2 / (fan_in + fan_out))" if case["scheme"] == "xavier" else "sqrt(2 / fan_in)"
        return (f"expected the weights' standard deviation to be {formula} = {std:.5g}, "
                f"got {sample_std:.5g} (ratio {sample_std / std:.3f})")
    # A normal distribution has kurtosis 3 (standard error sqrt(24 / n)); a uniform one 1.8.
    kurtosis = float(((w - mean) ** 4).mean() / ((w - mean) ** 2).mean() ** 2)
    if abs(kurtosis - 3) > _STANDARD_ERRORS * math.sqrt(24 / n) + 0.05:
        return (f"the weights should be drawn from a normal distribution (kurtosis 3); theirs has "
                f"kurtosis {kurtosis:.2f} (a uniform distribution has 1.8)")
    if case["bias"]:
        bias = got["bias"]
        if not isinstance(bias, Tensor) or tuple(bias.shape) != (case["fan_out"],):
            return f"layer.bias should still be a tensor of shape ({case['fan_out']},)"
        if bool((bias != 0).any()):
            return f"the bias should be all zeros, got values like {float(bias[(bias != 0)][0]):.3g}"
    elif got["bias"] is not None:
        return "the layer had no bias (bias=False); leave it without one"
    return None


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
        task="fill layer.weight in place from a normal with the scheme's std and set layer.bias to 0",
        hint="nn.Linear(fan_in, fan_out).weight has shape (fan_out, fan_in). Inside torch.no_grad(), "
             "layer.weight.normal_(0.0, std) draws in place; zero the bias only if the layer has one "
             "(layer.bias is None otherwise).",
        cases=_linear_cases,
        expected=_expected_linear,
        compare=_compare_linear,
    ),
)
