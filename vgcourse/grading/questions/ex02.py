"""Exercise 02, saturation and depth: the bound through L layers, when it vanishes, saturated units."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch

from vgcourse.activations import derivative_bound, saturated_fraction
from vgcourse.grading.cases import random_dtype, random_float, random_int, random_shape, random_tensor
from vgcourse.grading.calls import ex02 as calls
from vgcourse.grading.question import Case, Question, close_numbers
from vgcourse.validation import is_int

BOUND_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _pick(generator: torch.Generator, options: tuple[Any, ...]) -> Any:
    return options[random_int(generator, 0, len(options) - 1)]


# ---- depth_bound -------------------------------------------------------------------------------


def _depth_bound_cases(generator: torch.Generator) -> list[Case]:
    cases = [{"activation": name, "depth": random_int(generator, 2, 30),
              "weight_norm": random_float(generator, 0.5, 3.0)} for name in BOUND_ACTIVATIONS]
    cases.append({"activation": "sigmoid", "depth": 0, "weight_norm": random_float(generator, 0.5, 3.0)})
    cases.append({"activation": _pick(generator, BOUND_ACTIVATIONS), "depth": 1,
                  "weight_norm": random_float(generator, 0.5, 3.0)})
    cases.append({"activation": "sigmoid", "depth": random_int(generator, 5, 40), "weight_norm": 1.0})
    return cases


def _depth_bound(case: Case) -> float:
    return (derivative_bound(case["activation"]) * case["weight_norm"]) ** case["depth"]


# ---- layers_to_vanish --------------------------------------------------------------------------

def _exact_power_cases() -> list[tuple[float, int]]:
    """``(q, L)`` with ``q**L`` exact in float64 but ``log(q**L) / log(q)`` a hair below ``L``.

    There the bound *equals* the threshold at depth ``L``, and both ``ceil`` and ``floor + 1`` of
    the logarithm ratio give ``L`` instead of the right answer ``L + 1``.
    """
    found = []
    for numerator, exponent in ((3, 4), (3, 5), (3, 6), (5, 5), (7, 4)):  # q = 3/16, 3/32, ...
        q = numerator / 2**exponent
        for depth in range(2, 16):
            threshold = q**depth
            if Fraction(threshold) == Fraction(numerator, 2**exponent) ** depth \
                    and math.log(threshold) / math.log(q) < depth:
                found.append((q, depth))
    return found or [(0.1875, 5), (0.046875, 3)]  # exact powers still, should this libm's log be exact


_EXACT_BELOW = tuple(_exact_power_cases())


def _vanish_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    # The bound hits the threshold exactly; the log ratio comes out exactly L (so ceil is wrong).
    depth = random_int(generator, 2, 12)
    cases.append({"activation": "sigmoid", "weight_norm": 1.0, "threshold": 0.25**depth})
    # The bound hits the threshold exactly; the log ratio comes out a hair below L.
    q, depth = _pick(generator, _EXACT_BELOW)
    name = _pick(generator, BOUND_ACTIVATIONS)
    cases.append({"activation": name, "weight_norm": q / derivative_bound(name), "threshold": q**depth})
    # Random: the threshold sits well between two consecutive powers of the factor.
    for low, high in ((0.05, 0.5), (0.5, 0.9), (0.9, 0.995)):
        name = _pick(generator, BOUND_ACTIVATIONS)
        weight_norm = random_float(generator, low, high) / derivative_bound(name)
        q = derivative_bound(name) * weight_norm
        depth = random_int(generator, 0, 25) if high < 0.95 else random_int(generator, 0, 400)
        threshold = q ** (depth + random_float(generator, 0.1, 0.9))
        cases.append({"activation": name, "weight_norm": weight_norm, "threshold": threshold})
    # One layer is already enough.
    name = _pick(generator, BOUND_ACTIVATIONS)
    weight_norm = random_float(generator, 0.2, 0.6) / derivative_bound(name)
    cases.append({"activation": name, "weight_norm": weight_norm,
                  "threshold": random_float(generator, 0.7, 0.99)})
    return cases


def _layers_to_vanish(case: Case) -> int:
    """Exact answer: the smallest L >= 1 with q**L < threshold, in rational arithmetic."""
    q = Fraction(derivative_bound(case["activation"])) * Fraction(case["weight_norm"])
    threshold = Fraction(case["threshold"])
    estimate = max(1, math.floor(math.log(case["threshold"]) / math.log(float(q))) - 1)
    depth = estimate
    while depth > 1 and q ** (depth - 1) < threshold:
        depth -= 1
    while q**depth >= threshold:
        depth += 1
    return depth


def _compare_depth(got: Any, want: int, case: Case) -> str | None:
    if isinstance(got, float) and got.is_integer():
        return f"return an int (a number of layers), not the float {got!r}"
    if not is_int(got):
        return f"expected an int, got {type(got).__name__}"
    if got == want:
        return None
    q, threshold = derivative_bound(case["activation"]) * case["weight_norm"], case["threshold"]
    if got < 1:
        return f"expected {want}, got {got}: the depth is at least 1"
    if got < want:
        return (f"expected {want}, got {got}: at depth {got} the bound q**{got} = {q**got!r} "
                f"(q = {q!r}) is not below the threshold {threshold!r}")
    return (f"expected {want}, got {got}: already at depth {want} the bound q**{want} = {q**want!r} "
            f"(q = {q!r}) is below the threshold {threshold!r}")


# ---- saturated_fraction ------------------------------------------------------------------------

_EXACT_MARGINS = (0.0625, 0.125, 0.03125, 0.25)  # dyadic: margin and 1 - margin are exact floats


def _away_from(values: torch.Tensor, boundaries: list[float], gap: float = 1e-4) -> torch.Tensor:
    """``values`` with every entry closer than ``gap`` to a boundary pushed ``2 gap`` past it.

    Saturation tests use strict inequalities; random values must not sit within rounding of
    the boundary, where float32 and float64 (or two equivalent formulas) could disagree.
    """
    for boundary in boundaries:
        close = (values - boundary).abs() < gap
        values = torch.where(close, values + 2 * gap, values)
    return values


def _saturation_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for name in ("sigmoid", "tanh"):  # random pre-activations, default margin
        z = random_tensor(generator, random_shape(generator, 3, 12), random_float(generator, 1.0, 6.0))
        out = torch.sigmoid(z) if name == "sigmoid" else torch.tanh(z)
        out = _away_from(out, [0.05, 0.95] if name == "sigmoid" else [-0.95, 0.95])
        cases.append({"activation": name, "outputs": out.to(random_dtype(generator))})
    for name in ("sigmoid", "tanh"):  # random margin, far enough from 0.05 that the default won't do
        margin = random_float(generator, 0.1, 0.3)
        z = random_tensor(generator, (random_int(generator, 30, 100),), random_float(generator, 0.5, 4.0))
        out = torch.sigmoid(z) if name == "sigmoid" else torch.tanh(z)
        edges = [margin, 1 - margin] if name == "sigmoid" else [-(1 - margin), 1 - margin]
        cases.append({"activation": name, "outputs": _away_from(out, edges).to(random_dtype(generator)),
                      "margin": margin})
    # Exactly on the boundary: not saturated (strictly within the margin is). Plus both asymptotes.
    margin = _pick(generator, _EXACT_MARGINS)
    sigmoid = torch.tensor([margin, 1 - margin, 0.5 * margin, 1 - 0.5 * margin, 0.0, 1.0, 0.5, 2 * margin],
                           dtype=torch.float64)
    tanh = torch.tensor([1 - margin, -(1 - margin), 1 - 0.5 * margin, -1 + 0.5 * margin, -1.0, 1.0, 0.0, -0.5],
                        dtype=torch.float64)
    order = torch.randperm(len(sigmoid), generator=generator)
    cases.append({"activation": "sigmoid", "outputs": sigmoid[order].to(random_dtype(generator)), "margin": margin})
    cases.append({"activation": "tanh", "outputs": tanh[order].to(random_dtype(generator)), "margin": margin})
    # Everything saturated / nothing saturated / one value.
    n = random_int(generator, 3, 20)
    cases.append({"activation": "tanh", "outputs": -torch.ones(n, dtype=torch.float32)})
    cases.append({"activation": "sigmoid", "outputs": 0.4 + 0.2 * torch.rand(n, 2, generator=generator)})
    cases.append({"activation": "sigmoid", "outputs": torch.tensor([0.99])})
    # The default margin is 0.05: values 0.03 to 0.07 away from an asymptote tell it apart.
    values = torch.tensor([0.03, 0.07, 0.5, 0.93, 0.97], dtype=torch.float64)
    cases.append({"activation": "sigmoid", "outputs": values[torch.randperm(5, generator=generator)]})
    cases.append({"activation": "tanh", "outputs": 2 * values[torch.randperm(5, generator=generator)] - 1})
    return cases


def _saturation(case: Case) -> float:
    kwargs = {"margin": case["margin"]} if "margin" in case else {}
    return saturated_fraction(case["activation"], case["outputs"], **kwargs)


QUESTIONS = (
    Question(
        answer=calls.DEPTH_BOUND,
        points=2,
        task="return (sup f′ · weight_norm) ** depth for activation 'sigmoid', 'tanh' or 'relu'",
        hint="sup f′ is 1/4 for the sigmoid and 1 for tanh and ReLU; each of the `depth` layers "
             "contributes one derivative factor and one weight matrix; depth 0 gives 1.",
        cases=_depth_bound_cases,
        expected=_depth_bound,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-6, atol=0.0),
    ),
    Question(
        answer=calls.LAYERS_TO_VANISH,
        points=2,
        task="return the smallest depth L >= 1 at which (sup f′ · weight_norm) ** L < threshold",
        hint="The bound must be strictly below the threshold: where it equals the threshold exactly, "
             "one more layer is needed. log(threshold) / log(q) can land a hair on either side of an "
             "integer, so check your candidate with the bound itself (or just multiply layer by layer).",
        cases=_vanish_cases,
        expected=_layers_to_vanish,
        compare=_compare_depth,
    ),
    Question(
        answer=calls.SATURATED_FRACTION,
        points=2,
        task="return the fraction of entries of `outputs` strictly within `margin` of an asymptote",
        hint="The sigmoid's asymptotes are 0 and 1, tanh's are −1 and 1; an output exactly `margin` "
             "away is not saturated. Count over every entry of the tensor, whatever its shape, and "
             "use the `margin` argument (default 0.05).",
        cases=_saturation_cases,
        expected=_saturation,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-6, atol=1e-6),
    ),
)
