"""Exercise 05, initialization: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vgcourse.grading.answering import Call, Case


def given_layer(case: Case) -> nn.Linear:
    """The layer handed to the answer: PyTorch's default init, from the case's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case["seed"])
        return nn.Linear(case["fan_in"], case["fan_out"], bias=case["bias"])


def _call_linear(answer: Any, case: Case) -> dict[str, Any]:
    layer = given_layer(case)
    weight, bias = layer.weight, layer.bias
    answer(layer, case["scheme"])
    return {
        "weight": layer.weight.detach().clone(),
        "bias": None if layer.bias is None else layer.bias.detach().clone(),
        "same_parameters": layer.weight is weight and layer.bias is bias,
        "requires_grad": bool(layer.weight.requires_grad) and (layer.bias is None or bool(layer.bias.requires_grad)),
    }


INIT_STD = Call(
    id="ex05.init_std",
    answer_name="init_std",
    run=lambda answer, case: answer(case["scheme"], case["fan_in"], case["fan_out"]),
    answered_by=("vgcourse.probes.variance.weight_variance",),
)

INIT_LINEAR = Call(
    id="ex05.init_linear",
    answer_name="init_linear_",
    run=_call_linear,
    answered_by=("vgcourse.models._initialize",),
)

LAYER_GAIN = Call(
    id="ex05.layer_gain",
    answer_name="layer_gain",
    run=lambda answer, case: answer(case["activation"], case["init"], case["width"]),
    answered_by=("vgcourse.probes.variance.variance_gain",),
)

CALLS = (INIT_STD, INIT_LINEAR, LAYER_GAIN)
