"""vgcourse.grading.questions.ex09 (gradient clipping): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.question_answers import assert_fails_with


def _total(grads):
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads))


@torch.no_grad()
def clip_each_separately(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = _total(grads)
    for g in grads:
        if float(g.norm()) > max_norm:
            g.mul_(max_norm / float(g.norm()))
    return total


@torch.no_grad()
def clip_without_skipping(parameters, max_norm):
    total = _total([p.grad for p in parameters])
    for p in parameters:
        p.grad.mul_(min(1.0, max_norm / total))
    return total


@torch.no_grad()
def clip_norm_after(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = _total(grads)
    for g in grads:
        g.mul_(min(1.0, max_norm / total))
    return _total(grads)


@torch.no_grad()
def clip_always(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = _total(grads)
    for g in grads:
        g.mul_(max_norm / total)
    return total


def clip_not_in_place(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = _total(grads)
    grads = [g * min(1.0, max_norm / total) for g in grads]
    return total


def clip_upper_only(parameters, clip_value):
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(max=clip_value)


def clip_value_without_skipping(parameters, clip_value):
    for p in parameters:
        p.grad.clamp_(-clip_value, clip_value)


def clip_value_copy(parameters, clip_value):
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp(-clip_value, clip_value)


WRONG = [
    ("ex09.clip_by_norm", clip_each_separately, "one common factor"),
    ("ex09.clip_by_norm", clip_without_skipping, "NoneType"),
    ("ex09.clip_by_norm", clip_norm_after, "norm after clipping"),
    ("ex09.clip_by_norm", clip_always, "gradient of parameter"),
    ("ex09.clip_by_norm", clip_not_in_place, "above max_norm"),
    ("ex09.clip_by_value", clip_upper_only, "above clip_value"),
    ("ex09.clip_by_value", clip_value_without_skipping, "NoneType"),
    ("ex09.clip_by_value", clip_value_copy, "above clip_value"),
    ("ex09.clip_by_value", lambda parameters, clip_value: torch.nn.utils.clip_grad_norm_(parameters, clip_value),
     "gradient of parameter"),
    # the logits' factor, not a weight gradient's
    ("ex09.gradient_growth", lambda scale, depth, layer: scale**depth, "you predicted"),
    # growth toward the input: what a too-large step is not
    ("ex09.gradient_growth", lambda scale, depth, layer: scale ** (depth - layer), "you predicted"),
    ("ex09.gradient_growth", lambda scale, depth, layer: scale ** (2 * (depth - 1)), "you predicted"),  # the variance's
    ("ex09.gradient_growth", lambda scale, depth, layer: 0.0, "positive number"),
    ("ex09.gradient_growth", lambda scale, depth, layer: "38", "positive number"),
]

@pytest.mark.parametrize(("question_id", "answer", "message"), WRONG,
                         ids=[f"{q}-{getattr(a, '__name__', '?')}-{i}" for i, (q, a, _) in enumerate(WRONG)])
def test_wrong_answer_fails_with_a_message(question_id, answer, message):
    assert_fails_with(question_id, answer, message)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gradient_growth_passes_a_right_answer_written_as_a_tensor(seed):
    from vgcourse.grading import run_question

    result = run_question("ex09.gradient_growth", lambda scale, depth, layer: torch.tensor(scale) ** (depth - 1), seed=seed)
    assert result.passed, result.message


def test_the_measured_growth_is_scale_to_the_depth_minus_one_in_every_layer():
    from vgcourse.grading.questions.ex09 import measured_growth

    case = {"scale": 1.5, "depth": 10, "layer": 4, "width": 32, "seed": 3}
    assert measured_growth(case) == pytest.approx(1.5**9, rel=1e-4)
    assert measured_growth({**case, "layer": 1}) == pytest.approx(1.5**9, rel=1e-4)  # the same in every layer
    assert measured_growth({**case, "scale": 0.5, "depth": 3, "layer": 2}) == pytest.approx(0.25, rel=1e-4)
