"""Exercise 02, saturation and depth: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from vgcourse.grading.answering import Call, Case


def _call_saturation(answer: Any, case: Case) -> Any:
    if "margin" in case:
        return answer(case["activation"], case["outputs"], margin=case["margin"])
    return answer(case["activation"], case["outputs"])  # the default margin


DEPTH_BOUND = Call(
    id="ex02.depth_bound",
    answer_name="depth_bound",
    run=lambda answer, case: answer(case["activation"], case["depth"], case["weight_norm"]),
    answered_by=("vgcourse.activations.product_bound",),
)

LAYERS_TO_VANISH = Call(
    id="ex02.layers_to_vanish",
    answer_name="layers_to_vanish",
    run=lambda answer, case: answer(case["activation"], case["weight_norm"], case["threshold"]),
)

SATURATED_FRACTION = Call(
    id="ex02.saturated_fraction",
    answer_name="saturated_fraction",
    run=_call_saturation,
    answered_by=("vgcourse.activations.saturated_fraction", "vgcourse.activations.saturated_mask"),
)

CALLS = (DEPTH_BOUND, LAYERS_TO_VANISH, SATURATED_FRACTION)
