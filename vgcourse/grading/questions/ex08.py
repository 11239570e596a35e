"""Exercise 08, backpropagation through time: a vanilla RNN's states and ‖∂h_T/∂h_0‖, and the factor per step
of an LSTM's cell path, predicted from its forget-gate bias, then measured."""

from __future__ import annotations

from typing import Any


import torch
from torch import Tensor, nn

from vgcourse.grading.cases import random_dtype, random_float, random_int, random_tensor, tolerance
from vgcourse.grading.calls import ex08 as calls
from vgcourse.grading.calls.ex08 import ARGUMENTS
from vgcourse.grading.question import Case, Passed, Question, close_numbers, close_tensors, positive_number


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


# ---- ex08.forget_path_factor ------------------------------------------------------------------

FORGET_WEIGHT = 0.01
"""Every weight of the measured LSTM is drawn from U(−0.01, 0.01): each gate sees little more than its bias."""

FORGET_TOLERANCE = 0.1
"""How far the prediction may be from the measured factor per step, relative. The small weights move the
measurement up to about 4 % off σ(bias) (50 case sets); the plausible wrong answers (1 − σ, σ', 1/2) are each
at least 19 % off on some case of every set: the biases come from [−2, −0.5], [0.5, 1.5], [2, 4] and 0."""


def measured_forget_factor(case: Case) -> float:
    """‖∂c_T/∂c_0‖^(1/T), the spectral norm of the cell path's Jacobian per step, of an ``nn.LSTM`` with weights
    in ±0.01, zero biases except the forget gate's (``forget_bias``), on random inputs in [0, 1]; float64."""
    generator = torch.Generator().manual_seed(case["seed"])
    hidden, steps = case["hidden"], case["steps"]
    with torch.random.fork_rng(devices=[]):
        core = nn.LSTM(2, hidden, batch_first=True).double()
    with torch.no_grad():
        for param in core.parameters():
            param.copy_((2 * torch.rand(param.shape, generator=generator, dtype=torch.float64) - 1) * FORGET_WEIGHT)
        core.bias_ih_l0.zero_()
        core.bias_hh_l0.zero_()
        core.bias_ih_l0[hidden:2 * hidden] = case["forget_bias"]  # PyTorch's gate order: input, forget, cell, output
    x = torch.rand(1, steps, 2, generator=generator, dtype=torch.float64)
    h0 = torch.zeros(1, 1, hidden, dtype=torch.float64)
    c0 = torch.randn(hidden, generator=generator, dtype=torch.float64)

    def last_cell(c: Tensor) -> Tensor:
        return core(x, (h0, c.view(1, 1, hidden)))[1][1].view(hidden)

    jacobian = torch.autograd.functional.jacobian(last_cell, c0)
    return float(torch.linalg.matrix_norm(jacobian, ord=2)) ** (1 / steps)


def _forget_cases(generator: torch.Generator) -> list[Case]:
    biases = [random_float(generator, -2.0, -0.5), random_float(generator, 0.5, 1.5), random_float(generator, 2.0, 4.0),
              0.0]
    order = torch.randperm(len(biases), generator=generator).tolist()
    return [{"forget_bias": biases[i], "hidden": random_int(generator, 4, 12), "steps": random_int(generator, 10, 30),
             "seed": random_int(generator, 0, 10**6)} for i in order]


def _compare_forget(got: Any, measured: float, case: Case) -> str | Passed:
    got = positive_number(got, "the factor per time step")
    if isinstance(got, str):
        return got
    if abs(got / measured - 1) > FORGET_TOLERANCE:
        return (f"you predicted {got:.4g}; measured over {case['steps']} steps of an LSTM with forget-gate bias "
                f"{case['forget_bias']:.3g}: {measured:.4g} per step (within {FORGET_TOLERANCE:.0%} passes)")
    return Passed(f"forget bias {case['forget_bias']:.3g}: predicted {got:.3g}, measured {measured:.3g} per step")


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
    Question(
        answer=calls.FORGET_PATH_FACTOR,
        points=2,
        task="predict the factor per time step, ‖∂c_T/∂c_0‖^(1/T), of the cell path of an LSTM whose forget-gate "
             "biases are all forget_bias and whose weights are tiny (±0.01)",
        hint="Along the cell path ∂c_t/∂c_{t−1} = diag(f_t) (notebook 08). With tiny weights a gate is the sigmoid "
             "of little more than its bias.",
        cases=_forget_cases,
        expected=measured_forget_factor,
        compare=_compare_forget,
    ),
)
