"""vgcourse.grading.questions.ex12 (normalization and residuals in transformers): plausible wrong
answers fail with a message that says what is wrong (what every question shares is in
test_every_question.py)."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.question_answers import assert_fails_with, failure, solution
from torch import nn

from vgcourse.grading import get_question
from vgcourse.grading.answering import call_outputs
from vgcourse.grading.questions.ex12 import measured_gain


def test_a_gain_hard_coded_from_one_run_fails_the_next():
    question = get_question("ex12.layer_norm_gain")
    remembered = call_outputs(question.answer, solution("ex12.layer_norm_gain"),
                              question.cases(torch.Generator().manual_seed(0)))[0]["ok"]
    assert "✗" in failure("ex12.layer_norm_gain", lambda std, width: remembered, seeds=(1, 2, 3))


def test_the_measured_gain_is_the_mean_square_gain_of_random_gradients_and_the_closed_form():
    width, std = 10, 2.5
    row = torch.randn(width, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    row = std * (row - row.mean()) / row.std(unbiased=False)
    x = row.clone().requires_grad_(True)
    out = nn.functional.layer_norm(x, (width,))
    g = torch.randn(400, width, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    vjp = torch.stack([torch.autograd.grad(out, x, gi, retain_graph=True)[0] for gi in g])
    sampled = math.sqrt(float(vjp.pow(2).sum(1).mean() / g.pow(2).sum(1).mean()))
    assert measured_gain(std, width, seed=3) == pytest.approx(sampled, rel=0.05)
    assert measured_gain(std, width) == pytest.approx(math.sqrt(8 / 10) / math.sqrt(std**2 + 1e-5), rel=1e-6)


class PostLN(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.norm, self.linear1, self.linear2 = nn.LayerNorm(width), nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x):
        return self.norm(x + self.linear2(torch.relu(self.linear1(x))))


class NoSkip(PostLN):
    def forward(self, x):
        return self.linear2(torch.relu(self.linear1(self.norm(x))))


class DetachedSkip(PostLN):
    def forward(self, x):
        return x.detach() + self.linear2(torch.relu(self.linear1(self.norm(x))))


class BatchNormed(PostLN):
    def __init__(self, width, hidden):
        super().__init__(width, hidden)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, x):
        return x + self.linear2(torch.relu(self.linear1(self.norm(x))))


def zero_weight_only(block):
    with torch.no_grad():
        block.linear2.weight.zero_()
    return block


def zero_everything(block):
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
    return block


def zero_and_freeze(block):
    zero_weight_only(block)
    with torch.no_grad():
        block.linear2.bias.zero_()
    block.linear2.weight.requires_grad_(False)
    return block


def zero_in_a_copy(block):
    import copy
    block = copy.deepcopy(block)
    with torch.no_grad():
        block.linear2.weight.zero_()
        block.linear2.bias.zero_()
    return block


WRONG = [
    ("ex12.pre_ln_block", PostLN, "post-LN"),
    ("ex12.pre_ln_block", NoSkip, "identity path"),
    ("ex12.pre_ln_block", DetachedSkip, "gradient of block(x).sum()"),
    ("ex12.pre_ln_block", BatchNormed, "self.norm = nn.LayerNorm"),
    ("ex12.zero_branch", zero_weight_only, "linear2.bias is not all zeros"),
    ("ex12.zero_branch", zero_everything, "changed"),
    ("ex12.zero_branch", zero_in_a_copy, "in place"),
    ("ex12.zero_branch", zero_and_freeze, "gradient linear2.weight receives"),
    ("ex12.zero_branch", lambda block: block, "linear2.weight is not all zeros"),
    ("ex12.layer_norm_gain", lambda std, width: 1 / std, "removes two"),
    ("ex12.layer_norm_gain", lambda std, width: math.sqrt((width - 1) / width) / std, "expected"),
]


@pytest.mark.parametrize(("qid", "answer", "message"), WRONG, ids=[f"{q}-{i}" for i, (q, _, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(qid, answer, message):
    assert_fails_with(qid, answer, message)
