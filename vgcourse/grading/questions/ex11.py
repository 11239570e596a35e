"""Exercise 11, the Jacobian view: the isometry gain of an activation, a Jacobian's singular values, and LSUV."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vgcourse.grading.calls import ex11 as calls
from vgcourse.grading.calls.ex11 import FAMILIES, given_model
from vgcourse.grading.cases import random_float, random_int
from vgcourse.grading.question import Case, Question, close_numbers
from vgcourse.models import linear_layers
from vgcourse.probes.jacobian import singular_values
from vgcourse.validation import is_real

# ---- isometry_gain -----------------------------------------------------------------------------

SLOPE_AT_ZERO = {"tanh": 1.0, "sigmoid": 0.25, "erf": 2 / math.sqrt(math.pi), "atan": 1.0, "softsign": 1.0}
"""f'(0) of each family in ``calls.ex11.FAMILIES``: the slope of a · f(b · x) at 0 is a · b · f'(0)."""

GAIN_RTOL = 1e-3
"""How close the gain must be, relative: a central finite difference with step 1e-3 is well inside."""


def _gain_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = [{"family": "tanh", "a": 1.0, "b": 1.0}, {"family": "sigmoid", "a": 1.0, "b": 1.0}]
    families = list(FAMILIES)
    for i in torch.randperm(len(families), generator=generator).tolist():
        cases.append({"family": families[i], "a": random_float(generator, 0.5, 2.0),
                      "b": random_float(generator, 0.3, 3.0)})
    return cases


def _expected_gain(case: Case) -> float:
    return 1 / (case["a"] * case["b"] * SLOPE_AT_ZERO[case["family"]])


def _compare_gain(got: Any, want: float, case: Case) -> str | None:
    if not is_real(got):
        return f"expected a number (the gain), got {type(got).__name__}"
    problem = close_numbers(got, want, rtol=GAIN_RTOL, atol=0.0)
    if problem is None:
        return None
    slope = 1 / want
    if abs(got / slope - 1) <= GAIN_RTOL:
        return f"{problem}: that is the slope f'(0) itself; the gain is what multiplies it to 1"
    return problem


# ---- jacobian_singular_values ------------------------------------------------------------------


def _model_case(generator: torch.Generator, activation: str, init: str, depth: tuple[int, int],
                in_features: int, out_features: int, orthogonal: bool = False, batch: int | None = None,
                scale: float = 1.0) -> Case:
    shape = (in_features,) if batch is None else (batch, in_features)
    x = scale * torch.randn(shape, generator=generator)
    return {"in_features": in_features, "out_features": out_features, "depth": random_int(generator, *depth),
            "width": random_int(generator, 4, 24), "activation": activation, "init": init,
            "seed": random_int(generator, 0, 10**6), "orthogonal": orthogonal, "x": x}


def _jacobian_cases(generator: torch.Generator) -> list[Case]:
    features = lambda: random_int(generator, 2, 9)  # noqa: E731
    return [
        _model_case(generator, "tanh", "xavier", (2, 5), features(), features()),
        _model_case(generator, "relu", "he", (3, 6), features(), features()),   # some singular values exactly 0
        _model_case(generator, "sigmoid", "default", (2, 4), features(), features()),
        _model_case(generator, "tanh", "default", (1, 1), features(), features()),  # one linear layer: J = W
        _model_case(generator, "tanh", "default", (3, 5), 9, 3, orthogonal=True),
    ]


def _expected_values(case: Case) -> Tensor:
    return singular_values(given_model(case), case["x"])


def _compare_values(got: Any, want: Tensor, case: Case) -> str | None:
    if not isinstance(got, Tensor):
        return f"expected a tensor of singular values, got {type(got).__name__}"
    count = min(case["in_features"], case["out_features"])
    if got.dim() != 1 or got.numel() != count:
        return (f"expected a 1-D tensor of min(out_features, in_features) = {count} singular values "
                f"(torch.linalg.svdvals of the {case['out_features']} x {case['in_features']} Jacobian), "
                f"got shape {tuple(got.shape)}")
    if got.is_complex() or not got.is_floating_point():
        return f"expected real floating-point singular values, got dtype {got.dtype}"
    got = got.double()
    if not bool(torch.isfinite(got).all()):
        return "some singular values are NaN or infinite"
    if bool((got[:-1] < got[1:]).any()):
        return "return the singular values largest first, as torch.linalg.svdvals does"
    scale = float(want.max())
    worst = float((got - want).abs().max())
    if worst > 1e-4 * scale + 1e-4 * float(want.abs().min()):
        where = int((got - want).abs().argmax())
        return (f"singular value {where} should be {float(want[where]):.6g}, got {float(got[where]):.6g} "
                f"(the Jacobian is ∂model(x)/∂x, of shape (out_features, in_features) for one input x)")
    return None


# ---- lsuv_ -------------------------------------------------------------------------------------

LSUV_TOLERANCE = 0.1
"""Each layer's output variance on the batch must end within this of 1 (Mishkin & Matas's Tol_var)."""


def _lsuv_cases(generator: torch.Generator) -> list[Case]:
    def batch() -> int:
        return random_int(generator, 128, 256)

    return [
        _model_case(generator, "relu", "default", (4, 8), random_int(generator, 4, 16), 10, orthogonal=True,
                    batch=batch(), scale=random_float(generator, 0.5, 3.0)),
        _model_case(generator, "tanh", "default", (4, 8), random_int(generator, 4, 16), 5, orthogonal=True,
                    batch=batch(), scale=random_float(generator, 0.5, 3.0)),
        # PyTorch's default init draws nonzero biases: one rescaling is not exact there
        _model_case(generator, "relu", "default", (5, 8), random_int(generator, 4, 16), 3, batch=batch(),
                    scale=random_float(generator, 2.0, 5.0)),
        _model_case(generator, "sigmoid", "xavier", (3, 6), random_int(generator, 4, 16), 4, orthogonal=True,
                    batch=batch(), scale=random_float(generator, 0.5, 3.0)),
    ]


def _expected_lsuv(case: Case) -> dict[str, Any]:
    model = given_model(case)
    return {"weights": [linear.weight.detach().clone() for linear in linear_layers(model)],
            "biases": [linear.bias.detach().clone() for linear in linear_layers(model)]}


def _output_variances(case: Case, weights: list[Tensor], biases: list[Tensor]) -> list[float]:
    """Each linear layer's output variance on the case's batch, in float64, with the returned weights."""
    model = given_model(case).double()
    with torch.no_grad():
        for linear, weight, bias in zip(linear_layers(model), weights, biases):
            linear.weight.copy_(weight.double())
            linear.bias.copy_(bias.double())
        variances, h = [], case["x"].double()
        for layer in model:
            linear = getattr(layer, "linear", layer)
            z = linear(h)
            variances.append(float(z.var()))
            h = z if linear is layer else layer.act(z)
    return variances


def _compare_lsuv(got: Any, want: dict[str, Any], case: Case) -> str | None:
    if not isinstance(got, dict) or set(got) != {"weights", "biases", "same_parameters"}:
        return "the model's layers could not be read"
    if not got["same_parameters"]:
        return ("rescale the existing weights in place (inside torch.no_grad(), e.g. linear.weight.div_(std)); "
                "don't assign new tensors or Parameters to the layers")
    weights, biases = got["weights"], got["biases"]
    if len(weights) != len(want["weights"]) or not all(
            isinstance(w, Tensor) and w.shape == v.shape for w, v in zip(weights, want["weights"])):
        return "the model should keep its layers and their shapes"
    for number, (bias, before) in enumerate(zip(biases, want["biases"]), start=1):
        if not isinstance(bias, Tensor) or not torch.equal(bias, before):
            return f"layer {number}'s bias changed; LSUV rescales only the weights"
    for number, (weight, before) in enumerate(zip(weights, want["weights"]), start=1):
        ratio = weight.double() / before.double()
        if not bool(torch.isfinite(ratio).all()) or float(ratio.min()) <= 0 or not torch.allclose(
                ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4, atol=0.0):
            return (f"layer {number}'s weights should be its given weights times one positive number "
                    "(LSUV only rescales them)")
    variances = _output_variances(case, weights, biases)
    for number, variance in enumerate(variances, start=1):
        if not abs(variance - 1) < LSUV_TOLERANCE + 1e-6:
            scales = [float((w.double() / v.double()).flatten()[0]) for w, v in zip(weights, want["weights"])]
            return (f"layer {number}'s output (its pre-activations) has variance {variance:.4g} on x; every layer's "
                    f"should be within {LSUV_TOLERANCE} of 1. Your scale factors per layer: "
                    f"{', '.join(f'{s:.3g}' for s in scales)}. Measure each layer after rescaling the ones below it, "
                    f"and repeat until it is within {LSUV_TOLERANCE} (biases make one rescaling inexact).")
    return None


QUESTIONS = (
    Question(
        answer=calls.ISOMETRY_GAIN,
        points=2,
        task="return the gain g of orthogonal weights that makes a layer's Jacobian g · f'(0) · Q orthogonal near 0, "
             "for an activation f (a function of a tensor)",
        hint="Near 0 a layer's Jacobian is diag(f'(z)) · g · Q with every f'(z) ≈ f'(0): it is orthogonal when "
             "g · f'(0) = 1. Get f'(0) with autograd: x = torch.zeros((), dtype=torch.float64, requires_grad=True), "
             "then torch.autograd.grad(f(x), x). Return g as a Python float.",
        cases=_gain_cases,
        expected=_expected_gain,
        compare=_compare_gain,
    ),
    Question(
        answer=calls.SINGULAR_VALUES,
        points=2,
        task="return the singular values of the Jacobian ∂model(x)/∂x at one input x (a 1-D tensor), largest first",
        hint="The model takes a batch: model(x.unsqueeze(0)) has shape (1, out_features). "
             "torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), x) is the "
             "(out_features, in_features) Jacobian (float64 is more precise: x.double() and model.double() on a copy, "
             "copy.deepcopy); torch.linalg.svdvals returns its singular values largest first.",
        cases=_jacobian_cases,
        expected=_expected_values,
        compare=_compare_values,
    ),
    Question(
        answer=calls.LSUV,
        points=2,
        task="LSUV: for each nn.Linear of the model in forward order, rescale its weight in place until its output "
             "has variance within 0.1 of 1 on the batch x (at most 10 rescalings per layer)",
        hint="vgcourse.models.linear_layers(model) lists the nn.Linear layers in forward order. For each: register a "
             "forward hook that stores its output, run model(x) under torch.no_grad(), remove the hook, and while "
             "|var - 1| >= 0.1 divide linear.weight by the output's standard deviation and measure again. The "
             "layers below must already be rescaled when you measure a layer.",
        cases=_lsuv_cases,
        expected=_expected_lsuv,
        compare=_compare_lsuv,
    ),
)
