"""Exercise 09, gradient clipping: clip by total norm and clip by value, in place, like torch.nn.utils; and the
growth of every layer's gradient when all weights are scaled, predicted, then measured."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_shape, random_tensor, tolerance
from vgcourse.grading.calls import ex09 as calls
from vgcourse.grading.calls.ex09 import given_grads, given_parameters
from vgcourse.grading.question import Case, Passed, Question, close_numbers, close_tensors, positive_number
from vgcourse.models import deep_mlp, linear_layers


def _parameter_case(
    generator: torch.Generator, count: int, none: bool, dtype: torch.dtype, total: float = 1.0
) -> Case:
    """``count`` parameters of random shapes; one without a gradient when ``none``.

    The gradients are scaled so that their total L2 norm is ``total``. The tensors live under
    ``_``-prefixed keys so that messages show the shapes, not the values.
    """
    shapes = [random_shape(generator, max_dims=2, max_size=5) for _ in range(count)]
    grads: list[Tensor | None] = [random_tensor(generator, shape) for shape in shapes]
    if none:
        grads[random_int(generator, 0, count - 1)] = None
    scale = total / _total_norm(grads)
    grads = [None if g is None else (g * scale).to(dtype) for g in grads]
    return {
        "shapes": [list(shape) for shape in shapes],
        "has_grad": [g is not None for g in grads],
        "_params": [random_tensor(generator, shape, 1.0, dtype) for shape in shapes],
        "given_grads": grads,
    }


def _compare_grads(got: Any, expected: list[Tensor | None], rtol: float, atol: float) -> str | None:
    if not isinstance(got, list) or len(got) != len(expected):
        return "the gradients could not be read after the call"
    for index, (value, want) in enumerate(zip(got, expected)):
        if want is None:
            if value is not None:
                return f"parameter {index} had no gradient (.grad is None): skip it and leave .grad None"
            continue
        if value is None:
            return f"parameter {index}'s .grad became None"
        problem = close_tensors(value, want, rtol=rtol, atol=atol)
        if problem is not None:
            return f"gradient of parameter {index} after clipping: {problem}"
    return None


def _total_norm(grads: list[Tensor | None]) -> float:
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))


# ---- ex09.clip_by_norm ------------------------------------------------------------------------


def _norm_case(generator: torch.Generator, count: int, none: bool, dtype: torch.dtype, clipped: bool) -> Case:
    case = _parameter_case(generator, count, none, dtype, random_float(generator, 0.5, 50.0))
    factor = random_float(generator, 0.1, 0.8) if clipped else random_float(generator, 1.1, 3.0)
    case["max_norm"] = factor * _total_norm(case["given_grads"])
    return case


def _norm_cases(generator: torch.Generator) -> list[Case]:
    return [
        _norm_case(generator, 1, False, torch.float64, clipped=True),  # a single parameter
        _norm_case(generator, random_int(generator, 3, 4), True, torch.float32, clipped=True),
        _norm_case(generator, random_int(generator, 2, 4), False, random_dtype(generator), clipped=True),
        _norm_case(generator, random_int(generator, 2, 4), True, random_dtype(generator), clipped=False),  # below
    ]


def _norm_expected(case: Case) -> dict[str, Any]:
    dtype = case["_params"][0].dtype
    in_float64 = {**case, "_params": [p.double() for p in case["_params"]],
                  "given_grads": [None if g is None else g.double() for g in case["given_grads"]]}
    params = given_parameters(in_float64)
    norm = torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], case["max_norm"])
    return {"grads": [None if g is None else g.to(dtype) for g in given_grads(params)], "norm": float(norm)}


def _norm_compare(got: Any, expected: dict[str, Any], case: Case) -> str | None:
    if not isinstance(got, dict) or set(got) != {"grads", "norm"}:
        return "the results could not be read"
    # The total norms here are at least 0.5, so torch's +1e-6 in max_norm / (norm + 1e-6)
    # changes the result by at most 2e-6 relative: answers with or without it both pass.
    dtype = case["_params"][0].dtype
    rtol, atol = (1e-4, 1e-6) if dtype == torch.float32 else (1e-5, 1e-9)
    problem = _compare_grads(got["grads"], expected["grads"], rtol, atol)
    if problem is not None:
        if isinstance(got["grads"], list) and all(isinstance(g, Tensor) or g is None for g in got["grads"]):
            after = _total_norm(got["grads"])
            if after > case["max_norm"] * (1 + rtol):
                problem += (f" — after your clipping the total norm of all gradients is {after:.4g}, above "
                            f"max_norm = {case['max_norm']:.4g}: scale every gradient by one common factor")
        return problem
    problem = close_numbers(got["norm"], expected["norm"], rtol=rtol, atol=atol)
    if problem is not None:
        if close_numbers(got["norm"], min(expected["norm"], case["max_norm"]), rtol=rtol, atol=atol) is None:
            return f"returned norm: {problem} — that is the norm after clipping; return the total norm before"
        return f"returned norm: {problem} (the total L2 norm of all gradients, before clipping)"
    return None


# ---- ex09.clip_by_value -----------------------------------------------------------------------


def _value_case(generator: torch.Generator, count: int, none: bool, dtype: torch.dtype, clipped: bool) -> Case:
    case = _parameter_case(generator, count, none, dtype, random_float(generator, 0.5, 20.0))
    largest = max(float(g.abs().max()) for g in case["given_grads"] if g is not None)
    # clipped: the threshold cuts the largest entries but not all of them
    case["clip_value"] = largest * (random_float(generator, 0.2, 0.7) if clipped else random_float(generator, 1.1, 2.0))
    return case


def _value_cases(generator: torch.Generator) -> list[Case]:
    return [
        _value_case(generator, 1, False, torch.float64, clipped=True),
        _value_case(generator, random_int(generator, 3, 4), True, torch.float32, clipped=True),
        _value_case(generator, random_int(generator, 2, 4), False, random_dtype(generator), clipped=True),
        _value_case(generator, random_int(generator, 2, 4), True, random_dtype(generator), clipped=False),
    ]


def _value_expected(case: Case) -> list[Tensor | None]:
    params = given_parameters(case)
    torch.nn.utils.clip_grad_value_([p for p in params if p.grad is not None], case["clip_value"])
    return given_grads(params)


def _value_compare(got: Any, expected: list[Tensor | None], case: Case) -> str | None:
    dtype = case["_params"][0].dtype
    problem = _compare_grads(got, expected, **tolerance(dtype))
    if problem is not None and isinstance(got, list) and all(isinstance(g, Tensor) or g is None for g in got):
        largest = max((float(g.abs().max()) for g in got if g is not None and g.numel()), default=0.0)
        if largest > case["clip_value"] * (1 + 1e-6):
            problem += f" — an entry of size {largest:.4g} is left, above clip_value = {case['clip_value']:.4g}"
    return problem


# ---- ex09.gradient_growth ---------------------------------------------------------------------

GROWTH_TOLERANCE = 0.02
"""How far the prediction may be from the measured growth, relative. The measurement is exact up to float
rounding (below 1e-4 relative); a prediction one power of the scale off is at least 20 % off (scales 0.5-0.8,
1.25-2)."""


def measured_growth(case: Case) -> float:
    """How many times larger layer ``layer``'s weight gradient is in a ReLU network with He weights times
    ``scale`` (zero biases) than in the same network at scale 1, for one fixed error at the output."""
    generator = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(32, 16, generator=generator)
    output_error = torch.randn(32, 10, generator=generator)  # held fixed: ∂loss/∂logits, the same at both scales
    norms = []
    for scale in (1.0, case["scale"]):
        model = deep_mlp(16, 10, depth=case["depth"], width=case["width"], activation="relu", init="he",
                         weight_scale=scale, seed=case["seed"])
        (model(x) * output_error).sum().backward()
        norms.append(float(linear_layers(model)[case["layer"] - 1].weight.grad.double().norm()))
    return norms[1] / norms[0]


def _growth_cases(generator: torch.Generator) -> list[Case]:
    def case(layer_choice: str) -> Case:
        depth = random_int(generator, 3, 10)
        layer = {"first": 1, "last": depth, "any": random_int(generator, 2, depth - 1)}[layer_choice]
        scale = random_float(generator, 0.5, 0.8) if random_int(generator, 0, 2) == 0 else random_float(generator, 1.25, 2.0)
        return {"scale": scale, "depth": depth, "layer": layer, "width": random_int(generator, 16, 48),
                "seed": random_int(generator, 0, 10**6)}

    return [case("first"), case("last"), case("any"), case("any")]


def _compare_growth(got: Any, measured: float, case: Case) -> str | Passed:
    got = positive_number(got, "how many times larger the gradient gets")
    if isinstance(got, str):
        return got
    if abs(got / measured - 1) > GROWTH_TOLERANCE:
        return (f"you predicted {got:.4g}; measured in layer {case['layer']} of a {case['depth']}-layer ReLU network "
                f"with He weights × {case['scale']:.3g}: {measured:.4g} (within {GROWTH_TOLERANCE:.0%} passes)")
    return Passed(f"scale {case['scale']:.3g}, depth {case['depth']}, layer {case['layer']}: "
                  f"predicted {got:.4g}, measured {measured:.4g}")


QUESTIONS = (
    Question(
        answer=calls.CLIP_BY_NORM,
        points=3,
        task="rescale all parameters' .grad in place so their total L2 norm is at most max_norm; return the norm before",
        hint="total = √(Σ over parameters of ‖p.grad‖²), skipping p.grad is None. If total > max_norm, multiply "
             "every gradient by the same factor max_norm / total (p.grad.mul_(...)). Return total either way.",
        cases=_norm_cases,
        expected=_norm_expected,
        compare=_norm_compare,
    ),
    Question(
        answer=calls.CLIP_BY_VALUE,
        points=2,
        task="cap every entry of every parameter's .grad at ±clip_value, in place",
        hint="For each parameter whose .grad is not None: p.grad.clamp_(-clip_value, clip_value).",
        cases=_value_cases,
        expected=_value_expected,
        compare=_value_compare,
    ),
    Question(
        answer=calls.GRADIENT_GROWTH,
        points=2,
        task="predict how many times larger layer `layer`'s weight gradient gets when every weight of a depth-`depth` "
             "ReLU network with He weights and zero biases is multiplied by `scale`, for a fixed error at the output",
        hint="Layer l's weight gradient is (backward signal at layer l) × (layer l's input). The input passed through "
             "l − 1 scaled layers, the backward signal through the depth − l layers above: count the factors of scale "
             "(ReLU(s·z) = s·ReLU(z) for s > 0).",
        cases=_growth_cases,
        expected=measured_growth,
        compare=_compare_growth,
    ),
)
