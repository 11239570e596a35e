"""Exercise 02, saturation and depth: the bound through L layers, the per-layer factor predicted, saturated units."""

from __future__ import annotations

import functools
from typing import Any

import torch

from vgcourse.activations import derivative_bound, saturated_fraction
from vgcourse.data import digits
from vgcourse.grading.cases import random_dtype, random_float, random_int, random_shape, random_tensor
from vgcourse.grading.calls import ex02 as calls
from vgcourse.grading.question import Case, Question, close_numbers
from vgcourse.models import deep_mlp
from vgcourse.probes.hidden_states import signal_decay_factor
from vgcourse.validation import is_real

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


# ---- predicted_factor -------------------------------------------------------------------------

FACTOR_TOLERANCE = 0.15
"""How far (relative) a prediction may sit from the measured factor and still pass."""

FACTOR_INITS = ("default", "xavier")
FACTOR_DEPTH, FACTOR_WIDTH, FACTOR_BATCH = 20, 64, 256


def _factor_cases(generator: torch.Generator) -> list[Case]:
    """Every activation with both initializations, in random order, each at a random weight scale
    between 0.25 and 1 (where the small-input prediction holds) and a random seed."""
    pairs = [(name, init) for name in BOUND_ACTIVATIONS for init in FACTOR_INITS]
    order = torch.randperm(len(pairs), generator=generator).tolist()
    return [{"activation": pairs[i][0], "init": pairs[i][1],
             "weight_scale": round(random_float(generator, 0.25, 1.0), 2),
             "seed": random_int(generator, 0, 2**31 - 1)} for i in order]


@functools.cache
def _factor_batch() -> tuple[torch.Tensor, torch.Tensor]:
    data = digits(seed=0)  # notebook 02's batch: the first 256 training digits
    return data.x_train[:FACTOR_BATCH], data.y_train[:FACTOR_BATCH]


def _measured_factor(case: Case) -> float:
    model = deep_mlp(64, 10, depth=FACTOR_DEPTH, width=FACTOR_WIDTH, activation=case["activation"],
                     init=case["init"], weight_scale=case["weight_scale"], seed=case["seed"])
    return signal_decay_factor(model, *_factor_batch())


def _compare_factor(got: Any, measured: float, case: Case) -> str | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = float(got)
    if not is_real(got):
        return f"expected a number (your predicted factor), got {type(got).__name__}"
    off = got / measured - 1
    if not abs(off) <= FACTOR_TOLERANCE:
        direction = "too large" if off > 0 else "too small"
        return (f"your prediction {got:.3g} is {direction}: {abs(off):.0%} away from the measured factor "
                f"(within {FACTOR_TOLERANCE:.0%} passes)")
    return None


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
        points=1,
        task="return (sup f′ · weight_norm) ** depth for activation 'sigmoid', 'tanh' or 'relu'",
        hint="sup f′ is 1/4 for the sigmoid and 1 for tanh and ReLU; each of the `depth` layers "
             "contributes one derivative factor and one weight matrix; depth 0 gives 1.",
        cases=_depth_bound_cases,
        expected=_depth_bound,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-6, atol=0.0),
    ),
    Question(
        answer=calls.PREDICTED_FACTOR,
        points=2,
        task="predict the factor per layer by which the backward signal ‖∂L/∂h_l‖ shrinks in a 20-layer, "
             "width-64 network (activation, init 'default' or 'xavier', weight_scale), before measuring it",
        hint="One hidden layer multiplies the signal by about √(n·Var(w)) · √E[f′(z)²] (notebook 02). "
             "PyTorch's default init has Var(w) = 1/(3n), Xavier's 2/(n_in + n_out) = 1/n for square layers, "
             "and weight_scale multiplies every weight. With small pre-activations f′ ≈ f′(0): 1/4 for the "
             "sigmoid, 1 for tanh, and 1 on half the units for ReLU.",
        cases=_factor_cases,
        expected=_measured_factor,
        compare=_compare_factor,
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
