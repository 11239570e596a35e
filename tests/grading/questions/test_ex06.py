"""vgcourse.grading.questions.ex06 (batch normalization): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import pytest
import torch
from fixtures.question_answers import assert_fails_with


def bn_unbiased(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0) + eps) + beta


def bn_eps_outside(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / (x.std(0, unbiased=False) + eps) + beta


def bn_over_features(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def bn_float64(x, gamma, beta, eps=1e-5):
    x = x.double()
    return gamma.double() * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps) + beta.double()


def stats_biased(running_mean, running_var, x, momentum=0.1):
    return ((1 - momentum) * running_mean + momentum * x.mean(0),
            (1 - momentum) * running_var + momentum * x.var(0, unbiased=False))


def stats_swapped(running_mean, running_var, x, momentum=0.1):
    return momentum * running_mean + (1 - momentum) * x.mean(0), momentum * running_var + (1 - momentum) * x.var(0)


WRONG = [
    ("ex06.batchnorm_forward", bn_unbiased, "unbiased batch variance"),
    ("ex06.batchnorm_forward", bn_eps_outside, "values differ"),
    ("ex06.batchnorm_forward", bn_over_features, "values differ"),
    ("ex06.batchnorm_forward", bn_float64, "keep the input's dtype"),
    ("ex06.running_stats", stats_biased, "biased batch variance"),
    ("ex06.running_stats", stats_swapped, "new running mean"),
    ("ex06.running_stats", lambda m, v, x, momentum=0.1: (x.mean(0), x.var(0)), "new running mean"),
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)
