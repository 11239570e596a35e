"""Exercise 03, detection: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_globals

from vgcourse.grading.answering import Call, Case
from vgcourse.models import deep_mlp


# Where torch.nn keeps hooks: on each module, and globally for every module.
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")
_PARAMETER_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")


def build_model(case: Case) -> nn.Module:
    return deep_mlp(case["in_features"], case["out_features"], depth=case["depth"], width=case["width"],
                    activation=case["activation"], seed=case["seed"])


def previous_grads(model: nn.Module, case: Case) -> list[Tensor | None]:
    """The ``.grad`` each parameter holds before the learner's function runs, as if from an
    earlier backward pass nobody zeroed."""
    if case["grad_seed"] is None:
        return [None for _ in model.parameters()]
    generator = torch.Generator().manual_seed(case["grad_seed"])
    return [torch.randn(p.shape, generator=generator) for p in model.parameters()]


def _count_hooks(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        count += sum(len(getattr(module, name, None) or ()) for name in _MODULE_HOOKS)
    for parameter in model.parameters():
        count += sum(len(getattr(parameter, name, None) or ()) for name in _PARAMETER_HOOKS)
    return count


def _count_global_hooks() -> int:
    return sum(len(getattr(module_globals, name, None) or ()) for name in _GLOBAL_HOOKS)


def _call_hook(answer: Any, case: Case) -> dict[str, Any]:
    model = build_model(case)
    for parameter, grad in zip(model.parameters(), previous_grads(model, case)):
        parameter.grad = grad
    global_before = _count_global_hooks()
    norms = answer(model, case["x"], case["y"])
    if not isinstance(norms, dict):
        raise TypeError(f"record_grad_norms must return a dict, got {type(norms).__name__}")
    return {
        "norms": norms,
        "hooks_left": _count_hooks(model) + _count_global_hooks() - global_before,
        "grads_after": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
    }


HOOK = Call(
    id="ex03.hook",
    answer_name="record_grad_norms",
    run=_call_hook,
    answered_by=("vgcourse.probes.layers.layer_gradient_norms", "vgcourse.monitor.GradientMonitor"),
)

READING_NETWORKS: dict[str, dict[str, Any]] = {
    "sigmoid": dict(activation="sigmoid"),
    "ReLU": dict(activation="relu"),
    "sigmoid + batch norm": dict(activation="sigmoid", batch_norm=True),
    "tanh, Xavier × 8": dict(activation="tanh", init="xavier", weight_scale=8.0),
}
"""The four 10-layer, width-64 networks (seed 0) of exercise 03's figure, by their labels there:
notebook 03's ``BASELINE`` and three changes of it."""


def reading_network(label: str) -> nn.Module:
    """The untrained network ``label`` of :data:`READING_NETWORKS`, sized for the digits."""
    if label not in READING_NETWORKS:
        raise ValueError(f"unknown network {label!r}; choose one of {list(READING_NETWORKS)}")
    return deep_mlp(64, 10, depth=10, width=64, seed=0, **READING_NETWORKS[label])


READING = Call(
    id="ex03.read_the_plot",
    answer_name="orders_of_magnitude",
    run=lambda answer, case: answer(case["network"]),
    # a value read off the figure, not measured again: the probes that measure it refuse
    answered_by=("vgcourse.probes.layers.layer_gradient_norms",
                 "vgcourse.probes.hidden_states.hidden_gradient_norms"),
)

STALLED = Call(
    id="ex03.stalled",
    answer_name="loss_stalled",
    run=lambda answer, case: answer(list(case["losses"]), case["window"], case["min_improvement"]),
)

CALLS = (HOOK, STALLED, READING)
