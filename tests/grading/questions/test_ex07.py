"""vgcourse.grading.questions.ex07 (residual connections): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from fixtures.question_answers import assert_fails_with


class BlockWithoutSkip(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x):
        return torch.tanh(self.linear(x))


class BlockDetachedSkip(BlockWithoutSkip):
    def forward(self, x):
        return x.detach() + torch.tanh(self.linear(x))


class BlockOtherName(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.tanh(self.fc(x))


def _jacobian(weight, bias, x):
    z = weight @ x + bias
    return torch.eye(len(x), dtype=x.dtype) + (1 - torch.tanh(z) ** 2)[:, None] * weight


WRONG = [
    ("ex07.residual_block", BlockWithoutSkip, "identity path"),
    ("ex07.residual_block", BlockDetachedSkip, "gradient of block(x).sum()"),
    ("ex07.residual_block", BlockOtherName, "self.linear = nn.Linear"),
    ("ex07.residual_jacobian", lambda w, b, x: _jacobian(w, b, x).T, "transpose"),
    ("ex07.residual_jacobian", lambda w, b, x: _jacobian(w, b, x) - torch.eye(len(x), dtype=x.dtype), "adds I"),
    ("ex07.residual_jacobian", lambda w, b, x: torch.eye(len(x), dtype=x.dtype) + w * (1 - torch.tanh(w @ x + b) ** 2),
     "values differ"),
    ("ex07.residual_growth", lambda alpha, depth: 1.0, "every branch adds to it"),
    ("ex07.residual_growth", lambda alpha, depth: (1 + alpha) ** depth, "measured growth"),
    ("ex07.residual_growth", lambda alpha, depth: (1 + alpha**2) ** depth, "measured growth"),
    ("ex07.residual_growth", lambda alpha, depth: (1 + depth * alpha**2) ** 0.5, "measured growth"),
    ("ex07.residual_growth", lambda alpha, depth: "1.5", "expected a finite number"),
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)


def test_the_measured_growth_follows_one_plus_alpha_squared_per_block():
    from vgcourse.grading.questions.ex07 import GROWTH_TOLERANCE, measured_growth

    for alpha, depth in ((0.0, 7), (0.15, 40), (0.45, 6)):
        expected = (1 + alpha**2) ** (depth / 2)
        assert measured_growth(alpha, depth, seed=3) == pytest.approx(expected, rel=GROWTH_TOLERANCE / 2)
    assert measured_growth(0.0, 7, seed=3) == pytest.approx(1.0, abs=1e-12)


def test_residual_growth_accepts_a_tensor_and_a_remembered_number_fails():
    from fixtures.question_answers import failure
    from vgcourse.grading import run_question

    assert run_question("ex07.residual_growth", lambda a, L: torch.tensor((1 + a * a) ** (L / 2)), seed=0).passed
    assert "✗" in failure("ex07.residual_growth", lambda a, L: 1.8)

