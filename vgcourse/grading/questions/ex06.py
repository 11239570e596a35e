"""Exercise 06, batch normalization: the training-mode forward pass and the running averages."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.calls import ex06 as calls
from vgcourse.grading.question import Case, Question, close_tensors


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    # normalized outputs are O(1) and gamma * x_hat + beta can cancel: float32 needs a looser atol
    tol = tolerance(dtype)
    return {**tol, "atol": 1e-5} if dtype == torch.float32 else tol


def _same_dtype(got: Any, dtype: torch.dtype, what: str) -> str | None:
    if isinstance(got, Tensor) and got.dtype != dtype:
        return f"{what} should keep the input's dtype {dtype}, got {got.dtype}"
    return None


def _batch_norm(features: int, eps: float, momentum: float, dtype: torch.dtype = torch.float64) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(features, eps=eps, momentum=momentum).to(dtype).train()


# ---- ex06.batchnorm_forward -------------------------------------------------------------------

DEFAULT_EPS = 1e-5


def _forward_case(generator: torch.Generator, x: Tensor, eps: float | None) -> Case:
    features = x.shape[1]
    gamma = (1 + 0.5 * torch.randn(features, generator=generator, dtype=torch.float64)).to(x.dtype)
    beta = random_tensor(generator, (features,), 1.0, x.dtype)
    # "_default": call without eps, so the answer's default must be nn.BatchNorm1d's 1e-5
    return {"x": x, "gamma": gamma, "beta": beta, "eps": DEFAULT_EPS if eps is None else eps, "_default": eps is None}


def _forward_cases(generator: torch.Generator) -> list[Case]:
    cases = []
    # batch of 2: the biased variance is half the unbiased one, so the two cannot be confused
    cases.append(_forward_case(generator, random_tensor(generator, (2, random_int(generator, 1, 5))), None))
    # a constant feature (variance 0: only eps keeps it finite) and one whose variance is below eps
    batch = random_int(generator, 3, 12)
    constant = torch.full((batch, 1), random_float(generator, -3, 3), dtype=torch.float64)
    tiny = random_float(generator, -3, 3) + random_tensor(generator, (batch, 1), 1e-3)
    normal = random_tensor(generator, (batch, random_int(generator, 1, 3)), 2.0)
    cases.append(_forward_case(generator, torch.cat([constant, tiny, normal], dim=1), None))
    # general batches, one in each dtype, a given eps
    first = random_dtype(generator)
    for scale, dtype in ((1.0, first), (30.0, torch.float64 if first == torch.float32 else torch.float32)):
        shape = (random_int(generator, 3, 16), random_int(generator, 1, 8))
        x = random_float(generator, -5, 5) + random_tensor(generator, shape, scale)
        cases.append(_forward_case(generator, x.to(dtype), random_float(generator, 1e-4, 1e-2)))
    return cases


def _forward_expected(case: Case) -> Tensor:
    x = case["x"]
    norm = _batch_norm(x.shape[1], case["eps"], 0.1)
    with torch.no_grad():
        norm.weight.copy_(case["gamma"].double())
        norm.bias.copy_(case["beta"].double())
        return norm(x.double()).to(x.dtype)


def _forward_compare(got: Any, expected: Tensor, case: Case) -> str | None:
    problem = close_tensors(got, expected, **_tolerance(expected.dtype))
    if problem is None:
        return _same_dtype(got, expected.dtype, "the result")
    x = case["x"].double()
    if isinstance(got, Tensor) and got.shape == expected.shape and len(x) > 1:
        gamma, beta = case["gamma"].double(), case["beta"].double()
        unbiased = gamma * (x - x.mean(0)) / (x.var(0, unbiased=True) + case["eps"]).sqrt() + beta
        if torch.allclose(got.double(), unbiased, **_tolerance(expected.dtype)):
            return f"{problem} — your result matches the unbiased batch variance (÷(B−1))"
    return problem


# ---- ex06.running_stats -----------------------------------------------------------------------

DEFAULT_MOMENTUM = 0.1


def _stats_case(generator: torch.Generator, x: Tensor, momentum: float | None) -> Case:
    features = x.shape[1]
    running_mean = random_tensor(generator, (features,), 1.0, x.dtype)
    running_var = (0.2 + torch.rand(features, generator=generator, dtype=torch.float64) * 3).to(x.dtype)
    return {"running_mean": running_mean, "running_var": running_var, "x": x,
            "momentum": DEFAULT_MOMENTUM if momentum is None else momentum, "_default": momentum is None}


def _stats_cases(generator: torch.Generator) -> list[Case]:
    cases = [_stats_case(generator, random_tensor(generator, (2, random_int(generator, 1, 5)), 2.0), None)]
    for dtype in (torch.float32, random_dtype(generator)):
        shape = (random_int(generator, 3, 12), random_int(generator, 1, 6))
        x = random_float(generator, -3, 3) + random_tensor(generator, shape, 2.0)
        cases.append(_stats_case(generator, x.to(dtype), random_float(generator, 0.01, 0.4)))
    # momentum 1 keeps only the batch; a constant feature has batch variance 0
    x = random_tensor(generator, (random_int(generator, 3, 8), random_int(generator, 2, 4)), 1.5)
    x[:, 0] = random_float(generator, -2, 2)
    cases.append(_stats_case(generator, x, 1.0))
    return cases


def _stats_expected(case: Case) -> list[Tensor]:
    x = case["x"]
    norm = _batch_norm(x.shape[1], DEFAULT_EPS, case["momentum"])
    with torch.no_grad():
        norm.running_mean.copy_(case["running_mean"].double())
        norm.running_var.copy_(case["running_var"].double())
        norm(x.double())
    return [norm.running_mean.to(x.dtype), norm.running_var.to(x.dtype)]


def _stats_compare(got: Any, expected: list[Tensor], case: Case) -> str | None:
    if not isinstance(got, list) or len(got) != 2:
        return "expected a pair (new running mean, new running variance)"
    tol = _tolerance(expected[0].dtype)
    for value, want, what in zip(got, expected, ("running mean", "running variance")):
        problem = close_tensors(value, want, **tol) or _same_dtype(value, want.dtype, f"the new {what}")
        if problem is None:
            continue
        if what == "running variance" and isinstance(value, Tensor) and value.shape == want.shape:
            x = case["x"].double()
            momentum = case["momentum"]
            biased = (1 - momentum) * case["running_var"].double() + momentum * x.var(0, unbiased=False)
            if torch.allclose(value.double(), biased, **tol):
                return f"new {what}: {problem} — it matches the biased batch variance (÷B)"
        return f"new {what}: {problem}"
    return None


QUESTIONS = (
    Question(
        answer=calls.BATCHNORM_FORWARD,
        points=3,
        task="return γ·(x − μ_B)/√(σ²_B + ε) + β for a (batch, features) tensor x, "
             "as nn.BatchNorm1d does in training mode",
        hint="Per feature (dim 0 is the batch): μ_B = x.mean(0), σ²_B = x.var(0, unbiased=False) — the biased "
             "variance, ÷B — and ε goes inside the square root.",
        cases=_forward_cases,
        expected=_forward_expected,
        compare=_forward_compare,
    ),
    Question(
        answer=calls.RUNNING_STATS,
        points=2,
        task="return the (running_mean, running_var) that nn.BatchNorm1d stores after one training-mode forward of x",
        hint="new = (1 − momentum)·old + momentum·batch statistic. The forward pass normalizes with the biased "
             "variance, but the stored running_var uses the unbiased one, x.var(0, unbiased=True) (÷(B−1)).",
        cases=_stats_cases,
        expected=_stats_expected,
        compare=_stats_compare,
    ),
)
