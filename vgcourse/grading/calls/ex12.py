"""Exercise 12, normalization and residuals in transformers: how a grading kernel calls the answers
(no reference answers here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.grading.answering import Call, Case


def _load(block: nn.Module, case: Case) -> None:
    """Copy the case's weights into ``block.norm``, ``block.linear1`` and ``block.linear2``."""
    with torch.no_grad():
        for name in ("norm", "linear1", "linear2"):
            module = getattr(block, name)
            module.weight.copy_(case[f"{name}_weight"])
            module.bias.copy_(case[f"{name}_bias"])


def _check_parts(block: Any, width: int, hidden: int, what: str) -> None:
    if not isinstance(block, nn.Module):
        raise TypeError(f"{what} should be an nn.Module, got {type(block).__name__}")
    wanted = {"norm": (nn.LayerNorm, (width,), f"nn.LayerNorm({width})"),
              "linear1": (nn.Linear, (hidden, width), f"nn.Linear({width}, {hidden})"),
              "linear2": (nn.Linear, (width, hidden), f"nn.Linear({hidden}, {width})")}
    for name, (kind, shape, built) in wanted.items():
        module = getattr(block, name, None)
        weight = getattr(module, "weight", None)
        if not isinstance(module, kind) or weight is None or tuple(weight.shape) != shape or module.bias is None:
            raise TypeError(f"{what} needs an attribute self.{name} = {built}")


def _run(block: nn.Module, x: Tensor) -> dict[str, Any]:
    x = x.clone().requires_grad_(True)
    output = block(x)
    if not isinstance(output, Tensor):
        raise TypeError(f"forward should return a tensor, got {type(output).__name__}")
    grad = torch.autograd.grad(output.sum(), x, allow_unused=True)[0] if output.requires_grad else None
    return {"output": output, "grad": grad}


def _block_call(answer: Any, case: Case) -> dict[str, Any]:
    width, hidden, dtype = case["width"], case["hidden"], case["x"].dtype
    with torch.random.fork_rng(devices=[]):  # the block's own random init must not touch the notebook's RNG
        block = answer(width, hidden)
    _check_parts(block, width, hidden, f"PreLNBlock({width}, {hidden})")
    block = block.to(dtype)
    _load(block, case)
    return _run(block, case["x"])


class _Block(nn.Module):
    """The pre-LN block ``x + linear2(relu(linear1(norm(x))))`` that ``ex12.zero_branch`` hands the answer."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, hidden)
        self.linear2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


def _zero_call(answer: Any, case: Case) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):  # its weights are overwritten; the notebook's RNG stays as it was
        block = _Block(case["width"], case["hidden"]).to(case["x"].dtype)
    _load(block, case)
    returned = answer(block)
    if returned is not None and returned is not block:
        raise TypeError("zero_init_branch(block) should change block in place and return it (or None), "
                        f"got a {type(returned).__name__}")
    result = _run(block, case["x"])
    target = case["target"]
    loss = ((block(case["x"]) - target) ** 2).sum()  # a loss that is not 0 at the identity
    weight = block.linear2.weight
    grad = torch.autograd.grad(loss, weight, allow_unused=True)[0] if loss.requires_grad and weight.requires_grad else None
    result["state"] = {f"{name}_{part}": getattr(getattr(block, name), part).detach().clone()
                       for name in ("norm", "linear1", "linear2") for part in ("weight", "bias")}
    result["linear2_grad"] = grad  # None when linear2 cannot learn
    return result


def _gain_call(answer: Any, case: Case) -> Any:
    return answer(case["std"], case["width"])


PRE_LN_BLOCK = Call(
    id="ex12.pre_ln_block",
    answer_name="PreLNBlock",
    run=_block_call,
    answered_by=("vgcourse.norm_blocks.NormBlock",),
)

ZERO_BRANCH = Call(
    id="ex12.zero_branch",
    answer_name="zero_init_branch",
    run=_zero_call,
    answered_by=("vgcourse.norm_blocks.zero_branches_",),
)

LAYER_NORM_GAIN = Call(
    id="ex12.layer_norm_gain",
    answer_name="predicted_gain",
    run=_gain_call,
    answered_by=("vgcourse.probes.blocks.layer_norm_gain",),
)

CALLS = (PRE_LN_BLOCK, ZERO_BRANCH, LAYER_NORM_GAIN)
