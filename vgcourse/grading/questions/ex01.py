"""Exercise 01, derivative bounds: σ′ and tanh′ by hand, and how fast σ′ falls off."""

from __future__ import annotations

import math

import torch

from vgcourse.activations import derivative
from vgcourse.grading.cases import random_dtype, random_float, random_shape, random_tensor, tolerance
from vgcourse.grading.calls import ex01 as calls
from vgcourse.grading.question import Call, Case, Question, close_numbers, close_tensors


def _derivative_cases(generator: torch.Generator) -> list[Case]:
    # Wide inputs on purpose: formulas like exp(-x) / (1 + exp(-x))**2 overflow for large |x|.
    cases = [{"x": torch.tensor([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0], dtype=torch.float64)}]
    for scale in (1.0, 5.0, 40.0):
        dtype = random_dtype(generator)
        cases.append({"x": random_tensor(generator, random_shape(generator), scale, dtype)})
    return cases


def _derivative_question(answer: Call, name: str, symbol: str, points: int, hint: str) -> Question:
    def expected(case: Case) -> torch.Tensor:
        x = case["x"]
        return derivative(name, x.double()).to(x.dtype)

    return Question(
        answer=answer,
        points=points,
        task=f"return {symbol}′(x) elementwise for a tensor x, written with {symbol} itself (no autograd)",
        hint=hint,
        cases=_derivative_cases,
        expected=expected,
        compare=lambda got, want, case: close_tensors(got, want, **tolerance(case["x"].dtype)),
    )


def _input_cases(generator: torch.Generator) -> list[Case]:
    return [{"d": 0.25}, {"d": 1e-6}] + [{"d": random_float(generator, 1e-5, 0.25)} for _ in range(4)]


def _input_for_derivative(case: Case) -> float:
    s = (1 + math.sqrt(max(0.0, 1 - 4 * case["d"]))) / 2  # σ(x)(1 - σ(x)) = d, larger root
    return math.log(s / (1 - s))


QUESTIONS = (
    _derivative_question(calls.SIGMOID_DERIVATIVE, "sigmoid", "σ", 2, "σ′(x) = σ(x)·(1 − σ(x)); use torch.sigmoid so large |x| cannot overflow."),
    _derivative_question(calls.TANH_DERIVATIVE, "tanh", "tanh", 2, "tanh′(x) = 1 − tanh(x)²."),
    Question(
        answer=calls.INPUT_FOR_DERIVATIVE,
        points=2,
        task="return the x ≥ 0 at which σ′(x) equals d, for 0 < d ≤ 1/4",
        hint="Solve s(1 − s) = d for s = σ(x) (take the root ≥ 1/2), then invert σ: x = log(s / (1 − s)).",
        cases=_input_cases,
        expected=_input_for_derivative,
        compare=lambda got, want, case: close_numbers(got, want, rtol=1e-4, atol=1e-6),
    ),
)
