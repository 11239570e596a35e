"""Exercise 12, normalization and residuals in transformers: a pre-LN block, a branch zeroed so the
block starts as the identity, and the backward gain of LayerNorm predicted in closed form."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from vgcourse.grading.calls import ex12 as calls
from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.question import Case, Passed, Question, close_numbers, close_tensors

EPS = 1e-5
"""``nn.LayerNorm``'s default eps, which the gain question's LayerNorm uses."""


def _weights(generator: torch.Generator, width: int, hidden: int, dtype: torch.dtype) -> Case:
    """Random weights for a block's norm (scale near 1), linear1 and linear2."""
    return {
        "norm_weight": (1 + 0.3 * torch.randn(width, generator=generator, dtype=torch.float64)).to(dtype),
        "norm_bias": random_tensor(generator, (width,), 0.3, dtype),
        "linear1_weight": random_tensor(generator, (hidden, width), width ** -0.5, dtype),
        "linear1_bias": random_tensor(generator, (hidden,), 0.3, dtype),
        "linear2_weight": random_tensor(generator, (width, hidden), hidden ** -0.5, dtype),
        "linear2_bias": random_tensor(generator, (width,), 0.3, dtype),
    }


def _block_case(generator: torch.Generator, dtype: torch.dtype, offset: float = 0.0, min_hidden: int = 1,
                min_batch: int = 1) -> Case:
    width, hidden = random_int(generator, 2, 8), random_int(generator, min_hidden, 12)
    shape = (random_int(generator, min_batch, 5), width)
    x = offset + random_tensor(generator, shape, random_float(generator, 0.5, 3), dtype)
    return {"width": width, "hidden": hidden, **_weights(generator, width, hidden, dtype), "x": x}


def _forward(case: Case, x: Tensor, placement: str = "pre") -> Tensor:
    w = {name: value.double() for name, value in case.items() if name.endswith(("_weight", "_bias"))}

    def norm(h: Tensor) -> Tensor:
        return F.layer_norm(h, h.shape[-1:], w["norm_weight"], w["norm_bias"], eps=EPS)

    def branch(h: Tensor) -> Tensor:
        return F.linear(F.relu(F.linear(h, w["linear1_weight"], w["linear1_bias"])), w["linear2_weight"], w["linear2_bias"])

    if placement == "post":
        return norm(x + branch(x))
    if placement == "no skip":
        return branch(norm(x))
    return x + branch(norm(x))


def _output_and_grad(case: Case, placement: str = "pre") -> dict[str, Tensor]:
    x = case["x"].double().requires_grad_(True)
    output = _forward(case, x, placement)
    (grad,) = torch.autograd.grad(output.sum(), x)
    dtype = case["x"].dtype
    return {"output": output.detach().to(dtype), "grad": grad.to(dtype)}


# ---- ex12.pre_ln_block ------------------------------------------------------------------------


def _block_cases(generator: torch.Generator) -> list[Case]:
    first = random_dtype(generator)
    return [
        _block_case(generator, torch.float64),
        _block_case(generator, torch.float32),
        _block_case(generator, first, offset=random_float(generator, 2, 5)),  # inputs far from mean 0
    ]


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    tol = tolerance(dtype)  # layer norm of a float32 row: a looser atol, as in ex06
    return {**tol, "atol": 1e-5} if dtype == torch.float32 else tol


def _block_compare(got: Any, expected: dict[str, Tensor], case: Case) -> str | None:
    if not isinstance(got, dict) or set(got) != {"output", "grad"}:
        return "the block's results could not be read"
    tol = _tolerance(expected["output"].dtype)
    problem = close_tensors(got["output"], expected["output"], **tol)
    if problem is not None:
        for placement, what in (("post", "post-LN, norm(x + F(x)): normalize the branch's input, not the sum"),
                                ("no skip", "the branch alone: the identity path x + … is missing")):
            if close_tensors(got["output"], _output_and_grad(case, placement)["output"], **tol) is None:
                return f"block(x): {problem} — your block computes {what}"
        return f"block(x): {problem}"
    if got["grad"] is None:
        return "the output does not depend on x through autograd (was it detached?)"
    problem = close_tensors(got["grad"], expected["grad"], **tol)
    return None if problem is None else f"gradient of block(x).sum() with respect to x: {problem}"


# ---- ex12.zero_branch -------------------------------------------------------------------------


def _zero_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    for dtype in (torch.float64, torch.float32):
        # enough hidden units and examples that some relu is active: linear2's gradient is then not 0
        case = _block_case(generator, dtype, min_hidden=6, min_batch=3)
        case["target"] = random_tensor(generator, tuple(case["x"].shape), 1.0, dtype)
        cases.append(case)
    return cases


def _zero_expected(case: Case) -> dict[str, Any]:
    zeroed = {**case, "linear2_weight": torch.zeros_like(case["linear2_weight"]),
              "linear2_bias": torch.zeros_like(case["linear2_bias"])}
    weight = zeroed["linear2_weight"].double().requires_grad_(True)
    zeroed["linear2_weight"] = weight
    x = case["x"].double()
    loss = ((_forward(zeroed, x) - case["target"].double()) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, weight)
    dtype = case["x"].dtype
    return {"output": case["x"], "grad": torch.ones_like(case["x"]), "linear2_grad": grad.to(dtype)}


def _zero_compare(got: Any, expected: dict[str, Any], case: Case) -> str | None:
    if not isinstance(got, dict) or set(got) != {"output", "grad", "state", "linear2_grad"}:
        return "the block's results could not be read"
    state = got["state"]
    if not isinstance(state, dict):
        return "the block's results could not be read"
    for name in ("linear2_weight", "linear2_bias"):
        value = state.get(name)
        if not isinstance(value, Tensor) or bool((value != 0).any()):
            return f"block.{name.replace('_', '.')} is not all zeros: the branch's last linear map must start at 0"
    for name in ("norm_weight", "norm_bias", "linear1_weight", "linear1_bias"):
        problem = close_tensors(state.get(name), case[name], rtol=0, atol=0)
        if problem is not None:
            return (f"block.{name.replace('_', '.')} changed ({problem}): zero only linear2 — with linear1 "
                    "or the norm zeroed too, the branch's hidden units are all relu(0) = 0 or identical, and "
                    "linear2 gets no useful gradient")
    problem = close_tensors(got["output"], expected["output"], rtol=0, atol=0)
    if problem is not None:
        return f"block(x) is not exactly x: {problem}"
    problem = close_tensors(got["grad"], expected["grad"], rtol=0, atol=0)
    if problem is not None:
        return f"the gradient of block(x).sum() with respect to x is not all ones: {problem}"
    problem = close_tensors(got["linear2_grad"], expected["linear2_grad"], **_tolerance(case["x"].dtype))
    if problem is not None:
        return f"the gradient linear2.weight receives from a loss is wrong ({problem}): is the block still trainable?"
    return None


# ---- ex12.layer_norm_gain ---------------------------------------------------------------------


def measured_gain(std: float, width: int, seed: int = 0) -> float:
    """The backward gain of ``nn.LayerNorm(width)`` (eps 1e-5) measured with autograd, in float64,
    at a random input whose features have biased standard deviation exactly ``std``:
    ``sqrt(‖J‖²_F / width)``, the root mean square of ``‖Jᵀg‖ / ‖g‖`` over directions ``g``."""
    row = torch.randn(width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    row = std * (row - row.mean()) / row.std(unbiased=False)
    jacobian = torch.autograd.functional.jacobian(lambda h: F.layer_norm(h, (width,), eps=EPS), row)
    return float(jacobian.pow(2).sum().div(width).sqrt())


def _gain_cases(generator: torch.Generator) -> list[Case]:
    widths = [3, random_int(generator, 4, 10), random_int(generator, 16, 128), random_int(generator, 4, 64)]
    stds = [random_float(generator, 0.5, 2), random_float(generator, 0.3, 1), random_float(generator, 1, 8),
            random_float(generator, 0.3, 8)]
    return [{"std": std, "width": width, "seed": random_int(generator, 0, 10**6)} for std, width in zip(stds, widths)]


def _gain_compare(got: Any, expected: float, case: Case) -> str | Passed | None:
    problem = close_numbers(got, expected, rtol=1e-3, atol=0)
    width, std = case["width"], case["std"]
    if problem is None:
        return Passed(f"width {width}, input std {std:.3g}: you predicted {float(got):.4g}, measured {expected:.4g}")
    if close_numbers(got, 1 / std, rtol=1e-3, atol=0) is None:
        return (f"{problem} — 1/std is the scale only: LayerNorm's Jacobian also removes two of the "
                f"{width} directions (the mean and the input's own direction)")
    return problem


QUESTIONS = (
    Question(
        answer=calls.PRE_LN_BLOCK,
        points=3,
        task="write nn.Module PreLNBlock(width, hidden) with self.norm = nn.LayerNorm(width), "
             "self.linear1 = nn.Linear(width, hidden), self.linear2 = nn.Linear(hidden, width) and "
             "forward x + linear2(relu(linear1(norm(x))))",
        hint="Normalize only what goes into the branch: h = self.norm(x); "
             "return x + self.linear2(torch.relu(self.linear1(h))). The sum itself is not normalized.",
        cases=_block_cases,
        expected=_output_and_grad,
        compare=_block_compare,
    ),
    Question(
        answer=calls.ZERO_BRANCH,
        points=2,
        task="write zero_init_branch(block): set block.linear2's weight and bias to zero in place "
             "(under torch.no_grad()), leave everything else as it is, and return block",
        hint="with torch.no_grad(): block.linear2.weight.zero_(); block.linear2.bias.zero_() — then "
             "return block. Do not touch linear1 or norm.",
        cases=_zero_cases,
        expected=_zero_expected,
        compare=_zero_compare,
    ),
    Question(
        answer=calls.LAYER_NORM_GAIN,
        points=2,
        task="return, in closed form, the backward gain sqrt(‖J‖²_F / width) of nn.LayerNorm(width) "
             "(eps 1e-5) at an input whose features have standard deviation std",
        hint="J = (I − 11ᵀ/d − x̂x̂ᵀ/d) / sqrt(std² + eps): a projection that removes 2 of the d "
             "directions, scaled by 1/sqrt(std² + eps). ‖J‖²_F = (d − 2) / (std² + eps), so the gain is "
             "math.sqrt((width - 2) / width) / math.sqrt(std ** 2 + 1e-5).",
        cases=_gain_cases,
        expected=lambda case: measured_gain(case["std"], case["width"], case["seed"]),
        compare=_gain_compare,
    ),
)
