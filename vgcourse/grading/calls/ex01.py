"""Exercise 01, derivative bounds: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from vgcourse.grading.answering import Call

SIGMOID_DERIVATIVE = Call(
    id="ex01.sigmoid_derivative",
    answer_name="sigmoid_derivative",
    run=lambda answer, case: answer(case["x"]),
    answered_by=("vgcourse.activations._sigmoid_derivative",),
)

TANH_DERIVATIVE = Call(
    id="ex01.tanh_derivative",
    answer_name="tanh_derivative",
    run=lambda answer, case: answer(case["x"]),
    answered_by=("vgcourse.activations._tanh_derivative",),
)

INPUT_FOR_DERIVATIVE = Call(
    id="ex01.input_for_derivative",
    answer_name="input_for_derivative",
    run=lambda answer, case: answer(case["d"]),
)

CALLS = (SIGMOID_DERIVATIVE, TANH_DERIVATIVE, INPUT_FOR_DERIVATIVE)
