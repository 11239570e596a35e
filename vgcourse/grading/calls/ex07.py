"""Exercise 07, residual connections: how a grading kernel calls the answers (no reference answers here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vgcourse.grading.answering import Call, Case


def _block_call(answer: Any, case: Case) -> dict[str, Any]:
    width, dtype = case["width"], case["x"].dtype
    with torch.random.fork_rng(devices=[]):  # the block's own random init must not touch the notebook's RNG
        block = answer(width)
    if not isinstance(block, nn.Module):
        raise TypeError(f"ResidualBlock({width}) should be an nn.Module, got {type(block).__name__}")
    linear = getattr(block, "linear", None)
    if not isinstance(linear, nn.Linear) or tuple(linear.weight.shape) != (width, width) or linear.bias is None:
        raise TypeError(f"ResidualBlock({width}) needs an attribute self.linear = nn.Linear({width}, {width})")
    block = block.to(dtype)
    with torch.no_grad():
        block.linear.weight.copy_(case["weight"])
        block.linear.bias.copy_(case["bias"])
    x = case["x"].clone().requires_grad_(True)
    output = block(x)
    if not isinstance(output, Tensor):
        raise TypeError(f"forward should return a tensor, got {type(output).__name__}")
    grad = torch.autograd.grad(output.sum(), x, allow_unused=True)[0] if output.requires_grad else None
    return {"output": output, "grad": grad}


RESIDUAL_BLOCK = Call(
    id="ex07.residual_block",
    answer_name="ResidualBlock",
    run=_block_call,
    answered_by=("vgcourse.models.Dense",),
)

RESIDUAL_JACOBIAN = Call(
    id="ex07.residual_jacobian",
    answer_name="residual_jacobian",
    run=lambda answer, case: answer(case["weight"], case["bias"], case["x"]),
)

RESIDUAL_GROWTH = Call(
    id="ex07.residual_growth",
    answer_name="residual_growth",
    run=lambda answer, case: answer(case["alpha"], case["depth"]),
)

CALLS = (RESIDUAL_BLOCK, RESIDUAL_JACOBIAN, RESIDUAL_GROWTH)
