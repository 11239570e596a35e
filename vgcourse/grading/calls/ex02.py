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

PREDICTED_FACTOR = Call(
    id="ex02.predicted_factor",
    answer_name="predicted_factor",
    run=lambda answer, case: answer(case["activation"], case["init"], case["weight_scale"]),
    # measuring instead of predicting: the probes that measure the factor refuse in a grading kernel
    answered_by=("vgcourse.probes.hidden_states.signal_decay_factor",
                 "vgcourse.probes.hidden_states.hidden_gradient_norms",
                 "vgcourse.probes.layers.layer_gradient_norms"),
)

SATURATED_FRACTION = Call(
    id="ex02.saturated_fraction",
    answer_name="saturated_fraction",
    run=_call_saturation,
    answered_by=("vgcourse.activations.saturated_fraction", "vgcourse.activations.saturated_mask"),
)

CALLS = (DEPTH_BOUND, PREDICTED_FACTOR, SATURATED_FRACTION)
