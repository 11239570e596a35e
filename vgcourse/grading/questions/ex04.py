"""Exercise 04, the ReLU family: Leaky ReLU's derivative and the fraction of dead units."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_shape, random_tensor, tolerance
from vgcourse.grading.calls import ex04 as calls
from vgcourse.grading.question import Case, Question, close_numbers, close_tensors

# ---- leaky_relu_derivative ---------------------------------------------------------------------


def _with_zeros(generator: torch.Generator, x: Tensor) -> Tensor:
    """``x`` with about a quarter of its entries set to 0 (and one to -0.0): the kink."""
    x = x.clone()
    flat = x.view(-1)
    zeros = torch.rand(flat.shape, generator=generator) < 0.25
    flat[zeros] = 0.0
    flat[random_int(generator, 0, flat.numel() - 1)] = -0.0
    return x


def _leaky_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = [
        {"x": torch.tensor([-1e30, -3.0, -1e-30, -0.0, 0.0, 1e-30, 3.0, 1e30], dtype=random_dtype(generator)),
         "slope": random_float(generator, 0.01, 0.5)},
        {"x": torch.tensor(0.0, dtype=random_dtype(generator)), "slope": random_float(generator, 0.01, 0.5)},
    ]
    for slope in (random_float(generator, 0.001, 0.1), random_float(generator, 0.1, 0.9), 0.0, 1.0):
        x = random_tensor(generator, random_shape(generator), random_float(generator, 0.1, 10.0),
                          random_dtype(generator))
        cases.append({"x": _with_zeros(generator, x), "slope": slope})
    return cases


def _leaky(case: Case) -> Tensor:
    x = case["x"]
    one, slope = torch.tensor(1.0, dtype=torch.float64), torch.tensor(case["slope"], dtype=torch.float64)
    return torch.where(x > 0, one, slope).to(x.dtype)


def _compare_leaky(got: Any, want: Tensor, case: Case) -> str | None:
    problem = close_tensors(got, want, **tolerance(case["x"].dtype))
    if problem is None:
        return None
    x = case["x"]
    if isinstance(got, Tensor) and got.shape == want.shape:
        wrong = (got.to(torch.float64) - want.to(torch.float64)).abs() > 1e-4
        if bool((wrong & (x == 0)).any()) and not bool((wrong & (x != 0)).any()):
            return f"wrong only at x = 0: autograd (and vgcourse) use the slope {case['slope']:.6g} there, not 1"
    return problem


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
        answer=calls.LEAKY_RELU_DERIVATIVE,
        points=2,
        task="return Leaky ReLU's derivative elementwise: 1 where x > 0, `slope` elsewhere (x = 0 included)",
        hint="At the kink x = 0 PyTorch's autograd and vgcourse.activations use the negative side's "
             "slope. Return a tensor of x's shape (torch.where keeps it), and use the `slope` "
             "argument, not a fixed 0.01.",
        cases=_leaky_cases,
        expected=_leaky,
        compare=_compare_leaky,
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
