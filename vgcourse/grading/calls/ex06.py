"""Exercise 06, batch normalization: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from vgcourse.grading.answering import Call, Case


def _forward_call(answer: Any, case: Case) -> Any:
    if case["_default"]:
        return answer(case["x"], case["gamma"], case["beta"])
    return answer(case["x"], case["gamma"], case["beta"], eps=case["eps"])


def _scale_call(answer: Any, case: Case) -> Any:
    result = answer(case["scale"])
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(f"scale_factors must return three numbers (output, input gradient, weight gradient), "
                        f"got {type(result).__name__}")
    return list(result)


BATCHNORM_FORWARD = Call(
    id="ex06.batchnorm_forward",
    answer_name="batchnorm_forward",
    run=_forward_call,
)

SCALE_FACTORS = Call(
    id="ex06.scale_factors",
    answer_name="scale_factors",
    run=_scale_call,
)

CALLS = (BATCHNORM_FORWARD, SCALE_FACTORS)
