"""Exercise 09, gradient clipping: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from vgcourse.grading.answering import Call, Case


def given_parameters(case: Case) -> list[nn.Parameter]:
    params = [nn.Parameter(value.clone()) for value in case["_params"]]
    for param, grad in zip(params, case["given_grads"]):
        param.grad = None if grad is None else grad.clone()
    return params


def given_grads(params: list[nn.Parameter]) -> list[Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in params]


def _norm_call(answer: Any, case: Case) -> dict[str, Any]:
    params = given_parameters(case)
    returned = answer(params, case["max_norm"])
    return {"grads": given_grads(params), "norm": returned}


def _value_call(answer: Any, case: Case) -> list[Tensor | None]:
    params = given_parameters(case)
    answer(params, case["clip_value"])
    return given_grads(params)


CLIP_BY_NORM = Call(
    id="ex09.clip_by_norm",
    answer_name="clip_by_norm_",
    run=_norm_call,
)

CLIP_BY_VALUE = Call(
    id="ex09.clip_by_value",
    answer_name="clip_by_value_",
    run=_value_call,
)

GRADIENT_GROWTH = Call(
    id="ex09.gradient_growth",
    answer_name="gradient_growth",
    run=lambda answer, case: answer(case["scale"], case["depth"], case["layer"]),
)

CALLS = (CLIP_BY_NORM, CLIP_BY_VALUE, GRADIENT_GROWTH)
