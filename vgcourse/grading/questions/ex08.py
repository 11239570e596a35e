"""Exercise 08, backpropagation through time: a vanilla RNN's states and ‖∂h_T/∂h_0‖."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.calls import ex08 as calls
from vgcourse.grading.calls.ex08 import ARGUMENTS
from vgcourse.grading.question import Case, Question, close_numbers, close_tensors


def _states(case: Case, h0: Tensor | None = None) -> Tensor:
    """h_1 … h_T of h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), in float64."""
    w_xh, w_hh, b, xs = (case[name].double() for name in ARGUMENTS[:4])
    h = case["h0"].double() if h0 is None else h0
    states = []
    for x in xs:
        h = torch.tanh(w_xh @ x + w_hh @ h + b)
        states.append(h)
    return torch.stack(states)


def _orthogonal(generator: torch.Generator, n: int) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _rnn_case(
    generator: torch.Generator,
    steps: int,
    hidden: int,
    recurrent_scale: float = 1.0,
    orthogonal: bool = False,
    input_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Case:
    """Random RNN weights and inputs; W_hh is ``recurrent_scale`` times a random matrix whose
    singular values are about 1 (or exactly 1 when ``orthogonal``)."""
    inputs = random_int(generator, 1, 4)
    if orthogonal:
        w_hh = recurrent_scale * _orthogonal(generator, hidden)
    else:
        w_hh = random_tensor(generator, (hidden, hidden), recurrent_scale / hidden**0.5)
    case = {
        "w_xh": random_tensor(generator, (hidden, inputs), input_scale / inputs**0.5),
        "w_hh": w_hh,
        "b": random_tensor(generator, (hidden,), 0.3 * input_scale),
        "xs": random_tensor(generator, (steps, inputs)),
        "h0": random_tensor(generator, (hidden,), 0.5 * input_scale),
    }
    return {name: value.to(dtype) for name, value in case.items()}


# ---- ex08.rnn_states --------------------------------------------------------------------------


def _states_cases(generator: torch.Generator) -> list[Case]:
    return [
        _rnn_case(generator, 1, random_int(generator, 2, 5)),  # one step
        _rnn_case(generator, random_int(generator, 2, 10), 1),  # one hidden unit
        _rnn_case(generator, random_int(generator, 2, 10), random_int(generator, 2, 6), dtype=torch.float32),
        _rnn_case(generator, random_int(generator, 2, 10), random_int(generator, 2, 6), recurrent_scale=3.0,
                  dtype=random_dtype(generator)),
    ]


def _states_expected(case: Case) -> Tensor:
    return _states(case).to(case["xs"].dtype)


def _states_compare(got: Any, expected: Tensor, case: Case) -> str | None:
    steps, hidden = expected.shape
    if isinstance(got, Tensor) and tuple(got.shape) == (steps + 1, hidden):
        return f"expected shape {(steps, hidden)}, got {tuple(got.shape)}: return h_1 … h_T, one per input, without h_0"
    problem = close_tensors(got, expected, **tolerance(expected.dtype))
    if problem is not None and isinstance(got, Tensor) and got.shape == expected.shape:
        transposed = {**case, "w_hh": case["w_hh"].T}
        if torch.allclose(got.double(), _states(transposed), **tolerance(expected.dtype)):
            return f"{problem} — your states use W_hhᵀ: the recurrence is W_hh @ h_{{t−1}}"
    return problem


# ---- ex08.hidden_jacobian_norm ----------------------------------------------------------------


def _norm_cases(generator: torch.Generator) -> list[Case]:
    return [
        _rnn_case(generator, 1, random_int(generator, 3, 6)),  # one step: ∂h_1/∂h_0 = diag(1 − h_1²) W_hh
        # vanishing: every step multiplies by at most 0.3
        _rnn_case(generator, random_int(generator, 8, 15), random_int(generator, 2, 6), 0.3, orthogonal=True),
        # exploding: small inputs keep the states near 0, where tanh' ≈ 1, so each step multiplies by ≈ 1.3…1.6
        _rnn_case(generator, random_int(generator, 5, 10), random_int(generator, 2, 6), random_float(generator, 1.3, 1.6),
                  orthogonal=True, input_scale=0.01),
        _rnn_case(generator, random_int(generator, 2, 8), random_int(generator, 2, 6), dtype=torch.float32),
    ]


def _norm_expected(case: Case) -> float:
    jacobian = torch.autograd.functional.jacobian(lambda h0: _states(case, h0)[-1], case["h0"].double())
    return float(torch.linalg.matrix_norm(jacobian, ord=2))


def _norm_compare(got: Any, expected: float, case: Case) -> str | None:
    rtol = 1e-3 if case["h0"].dtype == torch.float32 else 1e-6
    problem = close_numbers(got, expected, rtol=rtol, atol=1e-300)
    if problem is not None and isinstance(got, (int, float, Tensor)):
        jacobian = torch.autograd.functional.jacobian(lambda h0: _states(case, h0)[-1], case["h0"].double())
        if abs(float(got) - float(torch.linalg.matrix_norm(jacobian))) <= rtol * abs(float(got)):
            return f"{problem} — that is the Frobenius norm; the spectral norm is the largest singular value"
    return problem


QUESTIONS = (
    Question(
        answer=calls.RNN_STATES,
        points=2,
        task="return the (T, hidden) tensor of states h_1 … h_T, h_t = tanh(W_xh x_t + W_hh h_{t−1} + b)",
        hint="Loop over the rows of xs: h = torch.tanh(w_xh @ x + w_hh @ h + b), starting from h = h0; "
             "collect every new h (not h0) and torch.stack them.",
        cases=_states_cases,
        expected=_states_expected,
        compare=_states_compare,
    ),
    Question(
        answer=calls.HIDDEN_JACOBIAN_NORM,
        points=3,
        task="return the spectral norm (largest singular value) of ∂h_T/∂h_0 as a float",
        hint="∂h_T/∂h_0 = J_T ⋯ J_1 with J_t = diag(1 − h_t²) W_hh (or take torch.autograd.functional.jacobian "
             "of h0 ↦ h_T); then torch.linalg.matrix_norm(J, ord=2), not the default Frobenius norm.",
        cases=_norm_cases,
        expected=_norm_expected,
        compare=_norm_compare,
    ),
)
