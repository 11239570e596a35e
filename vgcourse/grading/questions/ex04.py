"""Exercise 04, the ReLU family: the weight gain that suits Leaky ReLU, and the fraction of dead units."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor
from vgcourse.grading.calls import ex04 as calls
from vgcourse.grading.question import Case, Passed, Question, close_numbers, positive_number

# ---- leaky_relu_gain ---------------------------------------------------------------------------

DRAWS = 2**20
"""Gaussian pre-activations the check draws to measure a Leaky ReLU's E[f(z)²] / Var(z)."""

GAIN_TOLERANCE = 0.02
"""How far from 1 the per-layer variance factor of the learner's gain may be. The measurement's own
relative error is about sqrt(2 / DRAWS) = 0.14 % (at most 0.5 % in 500 cases); He's gain 2, right only
for ReLU, misses by 2 % already at slope 0.15."""

LAYERS = 20
"""The depth the feedback quotes: what the per-layer factor does to the variance over 20 layers."""


def measured_variance_factor(slope: float, seed: int) -> float:
    """E[f(z)²] / E[z²] for Leaky ReLU of negative slope ``slope``, measured on :data:`DRAWS`
    draws of z ~ N(0, 1) (float64, from ``seed``): the share of a layer's pre-activation variance
    its activation passes on."""
    z = torch.randn(DRAWS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return float(F.leaky_relu(z, slope).pow(2).mean() / z.pow(2).mean())


def _gain_cases(generator: torch.Generator) -> list[Case]:
    # ReLU (slope 0) and the identity (slope 1) in every set, so one remembered number fails
    slopes = [0.0, 1.0, random_float(generator, 0.15, 0.35), random_float(generator, 0.35, 0.65),
              random_float(generator, 0.65, 0.95)]
    order = torch.randperm(len(slopes), generator=generator).tolist()
    return [{"slope": slopes[i], "seed": random_int(generator, 0, 2**31 - 1)} for i in order]


def _compare_gain(got: Any, factor: float, case: Case) -> str | Passed:
    got = positive_number(got, "the gain n·Var(w)")
    if isinstance(got, str):
        return got
    per_layer = got * factor
    if abs(per_layer - 1) > GAIN_TOLERANCE:
        return (f"with gain {got:.4g} each layer multiplies the signal's variance by {per_layer:.3f} (measured: "
                f"E[f(z)²]/Var(z) = {factor:.4f} on {DRAWS:,} Gaussian draws), so {LAYERS} layers multiply it by "
                f"{per_layer ** LAYERS:.3g}; the right gain gives 1 within {GAIN_TOLERANCE:.0%} per layer")
    return Passed(f"slope {case['slope']:.3g}: your gain {got:.4g} makes each layer multiply the variance by "
                  f"{per_layer:.4f} (measured)")


# ---- dead_fraction -----------------------------------------------------------------------------


def _relu_batch(generator: torch.Generator, batch: int, units: int, dead: int) -> Tensor:
    """ReLU outputs of a ``batch × units`` layer whose first ``dead`` units (then shuffled) are dead."""
    z = random_tensor(generator, (batch, units), random_float(generator, 0.5, 3.0))
    z = z + random_float(generator, 0.2, 1.0)  # mostly positive: live units rarely look dead by chance
    z[:, :dead] = -z[:, :dead].abs() - 0.1
    outputs = torch.relu(z[:, torch.randperm(units, generator=generator)])
    return outputs


def _dead_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(2):  # forced dead units among live ones, which are zero on some examples
        batch, units = random_int(generator, 4, 40), random_int(generator, 5, 30)
        dead = random_int(generator, 1, units - 1)
        cases.append({"outputs": _relu_batch(generator, batch, units, dead).to(random_dtype(generator))})
    units = random_int(generator, 2, 20)
    cases.append({"outputs": torch.zeros(random_int(generator, 2, 10), units)})   # all dead
    cases.append({"outputs": _relu_batch(generator, random_int(generator, 3, 10), units, 0)
                  .clamp_min(1e-3)})                                                 # none dead
    cases.append({"outputs": torch.relu(random_tensor(generator, (1, random_int(generator, 4, 20))))})  # batch of 1
    # A unit that is positive on a single example, by a tiny amount, is alive: ReLU' = 1 there.
    outputs = _relu_batch(generator, random_int(generator, 4, 12), random_int(generator, 4, 12), 2)
    column = int((outputs == 0).all(0).nonzero()[0])
    outputs[random_int(generator, 0, len(outputs) - 1), column] = 1e-20
    cases.append({"outputs": outputs.to(torch.float64)})
    # Many units, few examples: examples and units must not be confused.
    cases.append({"outputs": _relu_batch(generator, 3, random_int(generator, 30, 60), random_int(generator, 1, 29))})
    return cases


def _dead(case: Case) -> float:
    outputs = case["outputs"]
    return float((outputs == 0).all(dim=0).to(torch.float64).mean())


QUESTIONS = (
    Question(
        answer=calls.LEAKY_RELU_GAIN,
        points=2,
        task="return the gain g = n·Var(w) that keeps the signal's variance constant from one Leaky ReLU "
             "layer (negative slope `slope`, 0 to 1) to the next; the check measures what your g does",
        hint="Forward, a layer multiplies the variance by n·Var(w) · E[f(z)²]/Var(z) (notebook 04, reason 1). For a "
             "symmetric z, half of the draws are positive and pass unchanged; the other half are multiplied "
             "by the slope. Slope 0 is ReLU (He's gain 2), slope 1 the identity (gain 1).",
        cases=_gain_cases,
        expected=lambda case: measured_variance_factor(case["slope"], case["seed"]),
        compare=_compare_gain,
    ),
    Question(
        answer=calls.DEAD_FRACTION,
        points=2,
        task="return the fraction of units (columns) that are 0 on every example (row) of the batch",
        hint="A unit is dead on the batch when its whole column is zero: (outputs == 0).all(dim=0). "
             "Any positive output, however small, means ReLU′ = 1 there and the unit is alive. "
             "Return the fraction of columns, not of entries.",
        cases=_dead_cases,
        expected=_dead,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-6, atol=1e-6),
    ),
)
