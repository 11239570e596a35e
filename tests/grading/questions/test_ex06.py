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


def scale_like_no_norm(a):
    return a, a, a   # a layer without batch norm: everything scales with W


WRONG = [
    ("ex06.batchnorm_forward", bn_unbiased, "unbiased batch variance"),
    ("ex06.batchnorm_forward", bn_eps_outside, "values differ"),
    ("ex06.batchnorm_forward", bn_over_features, "values differ"),
    ("ex06.batchnorm_forward", bn_float64, "keep the input's dtype"),
    ("ex06.scale_factors", scale_like_no_norm, "what a layer without batch norm would do"),
    ("ex06.scale_factors", lambda a: (1.0, 1.0, 1.0), "the weight gradient ∂L/∂W changes by a factor"),
    ("ex06.scale_factors", lambda a: (1.0, 1 / a, 1 / a), "the gradient reaching the layer's input"),
    ("ex06.scale_factors", lambda a: (1.0, 1.0, a), "the weight gradient ∂L/∂W"),
    ("ex06.scale_factors", lambda a: (1.0, 1.0), "three numbers"),
    ("ex06.scale_factors", lambda a: ("1", "1", "1"), "three finite numbers"),
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)


def test_scale_factors_are_measured_on_a_real_layer():
    # independent of the check's own expression: the factors of an nn.Linear + nn.BatchNorm1d pair
    from vgcourse.grading.questions.ex06 import measured_scale_factors

    for scale in (0.2, 3.0, 7.5):
        output, input_grad, weight_grad = measured_scale_factors(scale, seed=11)
        assert output == pytest.approx(1, abs=1e-3) and input_grad == pytest.approx(1, abs=1e-3)
        assert weight_grad == pytest.approx(1 / scale, rel=1e-3)


def test_scale_factors_accept_tensors_and_a_remembered_triple_fails():
    from fixtures.question_answers import failure
    from vgcourse.grading import run_question

    assert run_question("ex06.scale_factors", lambda a: (torch.tensor(1.0), 1, torch.tensor(1 / a)), seed=0).passed
    remembered = (1.0, 1.0, 1 / 2.0)   # right for a = 2 only
    assert "✗" in failure("ex06.scale_factors", lambda a: remembered)

