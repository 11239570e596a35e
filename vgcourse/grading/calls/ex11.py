"""Exercise 11, the Jacobian view: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from vgcourse.grading.answering import Call, Case
from vgcourse.initialization import orthogonal_
from vgcourse.models import DeepMLP, deep_mlp, linear_layers

FAMILIES: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "erf": torch.erf,
    "atan": torch.atan,
    "softsign": nn.functional.softsign,
}
"""The activations ``a · f(b · x)`` of the gain question are built from these ``f``."""


def activation_of(case: Case) -> Callable[[Tensor], Tensor]:
    """The case's activation ``x ↦ a · f(b · x)``, a function of a tensor."""
    f, a, b = FAMILIES[case["family"]], case["a"], case["b"]

    def activation(x: Tensor) -> Tensor:
        return a * f(b * x)

    activation.__name__ = f"{a:.3g}·{case['family']}({b:.3g}·x)"
    return activation


def given_model(case: Case) -> DeepMLP:
    """The case's network: ``deep_mlp`` from its fields, orthogonal weights when ``case["orthogonal"]``."""
    model = deep_mlp(case["in_features"], case["out_features"], depth=case["depth"], width=case["width"],
                     activation=case["activation"], init=case["init"], seed=case["seed"])
    return orthogonal_(model, seed=case["seed"]) if case.get("orthogonal") else model


def _call_singular_values(answer: Any, case: Case) -> Any:
    model = given_model(case)
    return answer(model, case["x"].clone())


def _call_lsuv(answer: Any, case: Case) -> dict[str, Any]:
    model = given_model(case)
    parameters = [(linear.weight, linear.bias) for linear in linear_layers(model)]
    with torch.random.fork_rng(devices=[]):
        answer(model, case["x"].clone())
    linears = linear_layers(model)
    return {
        "weights": [linear.weight.detach().clone() for linear in linears],
        "biases": [linear.bias.detach().clone() for linear in linears],
        "same_parameters": len(linears) == len(parameters) and all(
            linear.weight is weight and linear.bias is bias for linear, (weight, bias) in zip(linears, parameters)),
    }


def _call_gain(answer: Any, case: Case) -> Any:
    gain = answer(activation_of(case))
    return float(gain) if isinstance(gain, Tensor) and gain.numel() == 1 else gain


ISOMETRY_GAIN = Call(
    id="ex11.isometry_gain",
    answer_name="isometry_gain",
    run=_call_gain,
)

SINGULAR_VALUES = Call(
    id="ex11.singular_values",
    answer_name="jacobian_singular_values",
    run=_call_singular_values,
    answered_by=("vgcourse.probes.jacobian.singular_values", "vgcourse.probes.jacobian.jacobian"),
)

LSUV = Call(
    id="ex11.lsuv",
    answer_name="lsuv_",
    run=_call_lsuv,
    answered_by=("vgcourse.initialization.lsuv_",),
)

CALLS = (ISOMETRY_GAIN, SINGULAR_VALUES, LSUV)
