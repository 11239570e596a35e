"""Exercise 07, residual connections: a block, its Jacobian I + ∂F/∂x, and how a stack of blocks grows the signal."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.calls import ex07 as calls
from vgcourse.grading.question import Case, Passed, Question, close_tensors
from vgcourse.validation import is_real


def _block_output(weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    """x + tanh(W x + b) for a batch of row vectors x (or one vector)."""
    return x + torch.tanh(x @ weight.T + bias)


# ---- ex07.residual_block ----------------------------------------------------------------------


def _block_case(generator: torch.Generator, width: int, scale: float, dtype: torch.dtype, zero: bool = False) -> Case:
    shape = (random_int(generator, 1, 5), width)
    weight = random_tensor(generator, (width, width), scale / width**0.5, dtype)
    bias = random_tensor(generator, (width,), scale / 2, dtype)
    if zero:
        weight, bias = torch.zeros_like(weight), torch.zeros_like(bias)
    x = random_tensor(generator, shape, 1.0, dtype)
    return {"width": width, "weight": weight, "bias": bias, "x": x, "zero": zero}


def _block_cases(generator: torch.Generator) -> list[Case]:
    return [
        # first, so that a missing identity path gets its own message: with zero weight and bias
        # the branch is tanh(0) = 0 and only the identity path is left
        _block_case(generator, random_int(generator, 2, 8), 1.0, random_dtype(generator), zero=True),
        _block_case(generator, 1, 1.0, torch.float64),
        _block_case(generator, random_int(generator, 2, 8), 1.0, torch.float32),
        _block_case(generator, random_int(generator, 2, 8), 6.0, random_dtype(generator)),  # saturated tanh
    ]


def _block_expected(case: Case) -> dict[str, Tensor]:
    x = case["x"].double().requires_grad_(True)
    output = _block_output(case["weight"].double(), case["bias"].double(), x)
    (grad,) = torch.autograd.grad(output.sum(), x)
    dtype = case["x"].dtype
    return {"output": output.detach().to(dtype), "grad": grad.to(dtype)}


def _block_compare(got: Any, expected: dict[str, Tensor], case: Case) -> str | None:
    if not isinstance(got, dict) or set(got) != {"output", "grad"}:
        return "the block's results could not be read"
    tol = tolerance(expected["output"].dtype)
    if case["zero"]:  # with W = 0 and b = 0 the block is exactly the identity
        problem = close_tensors(got["output"], expected["output"], rtol=0, atol=0)
        if problem is not None:
            return (f"block(x): {problem} — with zero weight and bias the branch tanh(linear(x)) is 0, "
                    "so the block must return x itself: is the identity path x + … there?")
        tol = {"rtol": 0.0, "atol": 0.0}
    problem = close_tensors(got["output"], expected["output"], **tol)
    if problem is not None:
        return f"block(x): {problem}"
    if got["grad"] is None:
        return "the output does not depend on x through autograd (was it detached?)"
    problem = close_tensors(got["grad"], expected["grad"], **tol)
    if problem is not None:
        return f"gradient of block(x).sum() with respect to x: {problem}"
    return None


# ---- ex07.residual_jacobian -------------------------------------------------------------------


def _jacobian_case(generator: torch.Generator, d: int, scale: float, dtype: torch.dtype) -> Case:
    return {
        "weight": random_tensor(generator, (d, d), scale / d**0.5, dtype),
        "bias": random_tensor(generator, (d,), 0.5, dtype),
        "x": random_tensor(generator, (d,), 1.0, dtype),
    }


def _jacobian_cases(generator: torch.Generator) -> list[Case]:
    return [
        _jacobian_case(generator, 1, 1.0, torch.float64),
        _jacobian_case(generator, random_int(generator, 2, 6), 1.0, torch.float64),
        _jacobian_case(generator, random_int(generator, 2, 6), 2.0, torch.float32),
        _jacobian_case(generator, random_int(generator, 2, 6), 0.3, random_dtype(generator)),
        _jacobian_case(generator, random_int(generator, 2, 6), 10.0, random_dtype(generator)),  # saturated: ≈ I
    ]


def _jacobian_expected(case: Case) -> Tensor:
    weight, bias = case["weight"].double(), case["bias"].double()
    jacobian = torch.autograd.functional.jacobian(lambda x: _block_output(weight, bias, x), case["x"].double())
    return jacobian.to(case["x"].dtype)


def _jacobian_compare(got: Any, expected: Tensor, case: Case) -> str | None:
    tol = tolerance(expected.dtype)
    problem = close_tensors(got, expected, **tol)
    if problem is not None and isinstance(got, Tensor) and got.shape == expected.shape:
        if close_tensors(got, expected.T, **tol) is None:
            return (f"{problem} — your matrix is the transpose of the Jacobian: row i must hold the "
                    "derivatives of output i")
        identity = torch.eye(len(expected), dtype=expected.dtype)
        if close_tensors(got, expected - identity, **tol) is None:
            return f"{problem} — your matrix is ∂F/∂x alone: the identity path adds I"
    return problem


# ---- ex07.residual_growth ---------------------------------------------------------------------

GROWTH_WIDTH, GROWTH_BATCH = 256, 256
"""The stack the check measures: blocks of this width, on a batch of this many random inputs."""

GROWTH_TOLERANCE = 0.06
"""How far (relative) a prediction may be from the measured growth. For the cases' α and depths
(α²·depth ≤ 2) the measurement's own spread is about 1 % (at most about 3 % in 150 draws): a
prediction within 6 % is right, and the wrong ideas (no growth, (1 + α)^L, (1 + α²)^L) miss by more."""


def measured_growth(alpha: float, depth: int, seed: int) -> float:
    """RMS(h_L) / RMS(h_0) through ``depth`` linear residual blocks ``h ← h + α W h``, each ``W``
    with independent N(0, 1/width) entries, on a batch of random Gaussian inputs (from ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    h0 = torch.randn(GROWTH_BATCH, GROWTH_WIDTH, generator=generator)
    h = h0
    for _ in range(depth):
        weight = torch.randn(GROWTH_WIDTH, GROWTH_WIDTH, generator=generator) / GROWTH_WIDTH ** 0.5
        h = h + alpha * h @ weight.T
    return float(h.double().pow(2).mean().sqrt() / h0.double().pow(2).mean().sqrt())


def _growth_cases(generator: torch.Generator) -> list[Case]:
    long = random_int(generator, 10, 50)
    settings = [
        (random_float(generator, 0.1, 0.2), random_int(generator, 20, 50)),   # small branches, many blocks
        (random_float(generator, 0.25, 0.35), random_int(generator, 8, 16)),
        (random_float(generator, 0.4, 0.5), random_int(generator, 4, 8)),     # large branches, few blocks
        (1 / long ** 0.5, long),                                              # α = 1/√L
        (0.0, random_int(generator, 1, 20)),                                  # no branch at all
    ]
    order = torch.randperm(len(settings), generator=generator).tolist()
    return [{"alpha": settings[i][0], "depth": settings[i][1], "seed": random_int(generator, 0, 2**31 - 1)}
            for i in order]


def _growth_compare(got: Any, measured: float, case: Case) -> str | Passed:
    if isinstance(got, Tensor) and got.numel() == 1:
        got = float(got)
    if not is_real(got) or not math.isfinite(got):
        return f"expected a finite number (the growth factor), got {got!r}"
    alpha, depth = case["alpha"], case["depth"]
    if abs(got - measured) > GROWTH_TOLERANCE * measured:
        note = (" — the identity path passes the signal on, but every branch adds to it" if abs(got - 1) < 1e-9
                else "")
        return f"α = {alpha:.4g}, {depth} blocks: measured growth {measured:.4g}, you predicted {got:.4g}{note}"
    return Passed(f"α = {alpha:.3g}, {depth} blocks: you predicted {got:.4g}, measured {measured:.4g}")


QUESTIONS = (
    Question(
        answer=calls.RESIDUAL_BLOCK,
        points=3,
        task="write nn.Module ResidualBlock(width) with self.linear = nn.Linear(width, width) "
             "and forward x + tanh(linear(x))",
        hint="In __init__: super().__init__() then self.linear = nn.Linear(width, width). "
             "forward(self, x) returns x + torch.tanh(self.linear(x)): the input itself plus the branch.",
        cases=_block_cases,
        expected=_block_expected,
        compare=_block_compare,
    ),
    Question(
        answer=calls.RESIDUAL_JACOBIAN,
        points=2,
        task="return the d×d Jacobian of x ↦ x + tanh(W x + b) at one vector x, in closed form",
        hint="With z = W x + b, ∂/∂x_j of x_i + tanh(z_i) is δ_ij + (1 − tanh²(z_i)) W_ij: "
             "torch.eye(d) + (1 - torch.tanh(z) ** 2)[:, None] * W.",
        cases=_jacobian_cases,
        expected=_jacobian_expected,
        compare=_jacobian_compare,
    ),
    Question(
        answer=calls.RESIDUAL_GROWTH,
        points=2,
        task="return the factor RMS(h_L) / RMS(h_0) by which `depth` residual blocks h ← h + α W h (W with "
             "N(0, 1/width) entries) grow the signal; the check measures it",
        hint="One block: E‖h + α W h‖² = ‖h‖² + 2α E[hᵀ W h] + α² E‖W h‖². The middle term has mean 0, and with "
             "Var(w) = 1/width, E‖W h‖² = ‖h‖². The mean square multiplies by the same factor in every block; "
             "the RMS is its square root.",
        cases=_growth_cases,
        expected=lambda case: measured_growth(case["alpha"], case["depth"], case["seed"]),
        compare=_growth_compare,
    ),
)
