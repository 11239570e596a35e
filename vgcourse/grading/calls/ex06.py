"""Exercise 06, batch normalization: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from vgcourse.grading.answering import Call, Case


def _forward_call(answer: Any, case: Case) -> Any:
    if case["_default"]:
        return answer(case["x"], case["gamma"], case["beta"])
    return answer(case["x"], case["gamma"], case["beta"], eps=case["eps"])


def _stats_call(answer: Any, case: Case) -> Any:
    args = (case["running_mean"], case["running_var"], case["x"])
    result = answer(*args) if case["_default"] else answer(*args, momentum=case["momentum"])
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"update_running_stats must return a pair (mean, var), got {type(result).__name__}")
    return list(result)


BATCHNORM_FORWARD = Call(
    id="ex06.batchnorm_forward",
    answer_name="batchnorm_forward",
    run=_forward_call,
)

RUNNING_STATS = Call(
    id="ex06.running_stats",
    answer_name="update_running_stats",
    run=_stats_call,
)

CALLS = (BATCHNORM_FORWARD, RUNNING_STATS)
