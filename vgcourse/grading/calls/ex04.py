"""Exercise 04, the ReLU family: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from vgcourse.grading.answering import Call


LEAKY_RELU_DERIVATIVE = Call(
    id="ex04.leaky_relu_derivative",
    answer_name="leaky_relu_derivative",
    run=lambda answer, case: answer(case["x"], case["slope"]),
    answered_by=("vgcourse.activations._leaky_relu_derivative",),
)

DEAD_FRACTION = Call(
    id="ex04.dead_fraction",
    answer_name="dead_fraction",
    run=lambda answer, case: answer(case["outputs"]),
)

CALLS = (LEAKY_RELU_DERIVATIVE, DEAD_FRACTION)
