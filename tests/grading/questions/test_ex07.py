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
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)
