"""Exercise 06, batch normalization: the training-mode forward pass, and how it answers a change of weight scale."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.calls import ex06 as calls
from vgcourse.grading.question import Case, Passed, Question, close_tensors
from vgcourse.validation import is_real


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


# ---- ex06.scale_factors ----------------------------------------------------------------------

SCALE_TOLERANCE = 0.01
"""How far (relative) a predicted factor may be from the measured one. The measurement's own error
is the ε inside the square root: below 0.1 % for the cases' pre-activation spreads and scales."""

FACTORS = ("the output ẑ", "the gradient reaching the layer's input, ∂L/∂h", "the weight gradient ∂L/∂W")
"""What the three numbers of an answer are, in order."""


def measured_scale_factors(scale: float, seed: int) -> list[float]:
    """Measure by how much ``ẑ = BN(W h + b)`` (training mode, γ = 1, β = 0, ε = 1e-5), the gradient
    ``∂L/∂h`` and the gradient ``∂L/∂W`` change, as ratios of L2 norms, when ``W`` is multiplied by
    ``scale``. One random layer (float64, from ``seed``): a batch of 64 inputs ``h``, ``W`` with
    entries of variance ``1/fan_in`` and a random gradient arriving at ``ẑ`` (the loss is ``Σ g·ẑ``).
    """
    generator = torch.Generator().manual_seed(seed)
    fan_in, fan_out = random_int(generator, 8, 32), random_int(generator, 4, 16)
    h = random_tensor(generator, (64, fan_in))
    weight = random_tensor(generator, (fan_out, fan_in), fan_in ** -0.5)
    bias = random_tensor(generator, (fan_out,))
    upstream = random_tensor(generator, (64, fan_out))

    def norms(w: Tensor) -> list[float]:
        h_ = h.clone().requires_grad_(True)
        w_ = w.clone().requires_grad_(True)
        out = F.batch_norm(h_ @ w_.T + bias, None, None, training=True, eps=DEFAULT_EPS)
        grad_h, grad_w = torch.autograd.grad((out * upstream).sum(), (h_, w_))
        return [float(t.detach().norm()) for t in (out, grad_h, grad_w)]

    return [new / old for new, old in zip(norms(scale * weight), norms(weight))]


def _scale_cases(generator: torch.Generator) -> list[Case]:
    # small, near 1 and large scales, in a random order: one remembered triple cannot pass them all
    scales = [random_float(generator, 0.1, 0.5), random_float(generator, 0.6, 0.9),
              random_float(generator, 1.5, 3.0), random_float(generator, 4.0, 10.0)]
    order = torch.randperm(len(scales), generator=generator).tolist()
    return [{"scale": scales[i], "seed": random_int(generator, 0, 2**31 - 1)} for i in order]


def _scale_compare(got: Any, measured: list[float], case: Case) -> str | Passed:
    if isinstance(got, list):
        got = [float(v) if isinstance(v, Tensor) and v.numel() == 1 else v for v in got]
    if not isinstance(got, list) or len(got) != 3 or not all(is_real(v) and math.isfinite(v) for v in got):
        return f"expected three finite numbers (output, input-gradient and weight-gradient factors), got {got!r}"
    a = case["scale"]
    for predicted, value, what in zip(got, measured, FACTORS):
        if abs(predicted - value) > SCALE_TOLERANCE * abs(value):
            note = ""
            if abs(predicted - a) <= SCALE_TOLERANCE * a and abs(value - a) > SCALE_TOLERANCE * a:
                note = " — that is what a layer without batch norm would do; batch norm divides by σ_B, which scales too"
            return (f"with W multiplied by {a:.4g}, {what} changes by a factor {value:.4f} (measured), "
                    f"you predicted {predicted:.4g}{note}")
    return Passed(f"W × {a:.3g}: measured factors {measured[0]:.4f}, {measured[1]:.4f}, {measured[2]:.4f} "
                  f"(1/{a:.3g} = {1 / a:.4f})")


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
        answer=calls.SCALE_FACTORS,
        points=2,
        task="return the factors (output, ∂L/∂h, ∂L/∂W) by which a layer ẑ = BN(W h + b) changes when W is "
             "multiplied by `scale`; the check measures them on a real layer",
        hint="Multiplying W by a multiplies W h and its batch spread σ_B by a (the bias goes with the batch mean). "
             "Forward, the two cancel. Backward, batch norm multiplies by γ/σ_B, so ∂L/∂(W h) changes by 1/a; "
             "then ∂L/∂h = Wᵀ ∂L/∂(W h) and ∂L/∂W = ∂L/∂(W h) hᵀ.",
        cases=_scale_cases,
        expected=lambda case: measured_scale_factors(case["scale"], case["seed"]),
        compare=_scale_compare,
    ),
)
