"""vgcourse.grading.questions.ex08 (LSTM/GRU): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import pytest
import torch
from fixtures.question_answers import assert_fails_with


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
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)
