"""vgcourse.grading.questions.ex08 (LSTM/GRU): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.question_answers import assert_fails_with


def _sigmoid(value):
    return 1 / (1 + math.exp(-value))


def _states(w_xh, w_hh, b, xs, h0):
    h, states = h0, []
    for x in xs:
        h = torch.tanh(w_xh @ x + w_hh @ h + b)
        states.append(h)
    return torch.stack(states)


def _hidden_jacobian(w_xh, w_hh, b, xs, h0):
    return torch.autograd.functional.jacobian(lambda h: _states(w_xh, w_hh, b, xs, h)[-1], h0)


def norm_shifted(w_xh, w_hh, b, xs, h0):  # diag(1 - h_{t-1}²) instead of diag(1 - h_t²)
    jacobian, previous = torch.eye(len(h0), dtype=h0.dtype), h0
    for h in _states(w_xh, w_hh, b, xs, h0):
        jacobian, previous = ((1 - previous**2)[:, None] * w_hh) @ jacobian, h
    return float(torch.linalg.matrix_norm(jacobian, ord=2))


def norm_reversed(w_xh, w_hh, b, xs, h0):  # J_1 ⋯ J_T instead of J_T ⋯ J_1
    jacobian = torch.eye(len(h0), dtype=h0.dtype)
    for h in _states(w_xh, w_hh, b, xs, h0):
        jacobian = jacobian @ ((1 - h**2)[:, None] * w_hh)
    return float(torch.linalg.matrix_norm(jacobian, ord=2))


WRONG = [
    ("ex08.rnn_states", lambda w_xh, w_hh, b, xs, h0: torch.cat([h0[None], _states(w_xh, w_hh, b, xs, h0)]), "without h_0"),
    ("ex08.rnn_states", lambda w_xh, w_hh, b, xs, h0: _states(w_xh, w_hh.T, b, xs, h0), "W_hhᵀ"),
    ("ex08.rnn_states", lambda w_xh, w_hh, b, xs, h0: _states(w_xh, w_hh, 0 * b, xs, h0), "values differ"),
    ("ex08.hidden_jacobian_norm", lambda *args: float(torch.linalg.matrix_norm(_hidden_jacobian(*args))), "Frobenius"),
    ("ex08.hidden_jacobian_norm", norm_shifted, "expected"),
    ("ex08.hidden_jacobian_norm", norm_reversed, "expected"),
    ("ex08.hidden_jacobian_norm", lambda w_xh, w_hh, b, xs, h0: float(torch.linalg.matrix_norm(w_hh, ord=2)) ** len(xs),
     "expected"),
    ("ex08.forget_path_factor", lambda forget_bias: 1 - _sigmoid(forget_bias), "you predicted"),  # 1 - f: the input gate's share
    ("ex08.forget_path_factor", lambda forget_bias: _sigmoid(forget_bias) * (1 - _sigmoid(forget_bias)), "you predicted"),  # σ'
    ("ex08.forget_path_factor", lambda forget_bias: 0.5, "you predicted"),  # σ(0): ignores the bias
    ("ex08.forget_path_factor", lambda forget_bias: None, "positive number"),
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)


@pytest.mark.parametrize("forget_bias, expected", [(0.0, 0.5), (2.0, 1 / (1 + math.exp(-2.0))), (-1.0, 1 / (1 + math.exp(1.0)))])
def test_the_measured_forget_path_factor_is_near_the_forget_gate(forget_bias, expected):
    from vgcourse.grading.questions.ex08 import measured_forget_factor

    measured = measured_forget_factor({"forget_bias": forget_bias, "hidden": 6, "steps": 20, "seed": 5})
    assert measured == pytest.approx(expected, rel=0.05)
    assert abs(measured - expected) > 1e-6  # measured in a real LSTM, not computed from the formula
