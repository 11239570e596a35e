"""Exercise 04, the ReLU family: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from vgcourse.grading.answering import Call


LEAKY_RELU_GAIN = Call(
    id="ex04.leaky_relu_gain",
    answer_name="leaky_relu_gain",
    run=lambda answer, case: answer(case["slope"]),
)

DEAD_FRACTION = Call(
    id="ex04.dead_fraction",
    answer_name="dead_fraction",
    run=lambda answer, case: answer(case["outputs"]),
)

CALLS = (LEAKY_RELU_GAIN, DEAD_FRACTION)
