"""vgcourse.grading.questions.ex02 (saturation and depth): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import math

import torch
from fixtures.question_answers import SEEDS, failure

from vgcourse.grading import run_question


SUP = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}


def test_depth_bound_wrong_answers():
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: (SUP[a] * w) ** (d - 1))  # off by one
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: w**d)                    # sup f' = 1
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: SUP[a] ** d)             # no weights
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: SUP[a] * w**d)           # one factor
    assert "KeyError" in failure("ex02.depth_bound", lambda a, d, w: ({"sigmoid": 0.25, "tanh": 1.0}[a] * w) ** d)
    assert "expected a number, got str" in failure("ex02.depth_bound", lambda a, d, w: str((SUP[a] * w) ** d))


def test_layers_to_vanish_alternative_right_answer_passes():
    def multiply(activation, weight_norm, threshold):
        depth, bound = 1, SUP[activation] * weight_norm
        while bound >= threshold:
            depth, bound = depth + 1, bound * SUP[activation] * weight_norm
        return depth

    for seed in SEEDS:
        assert run_question("ex02.layers_to_vanish", multiply, seed=seed).passed


def test_layers_to_vanish_wrong_answers():
    def ratio(a, w, t):
        return math.log(t) / math.log(SUP[a] * w)

    message = failure("ex02.layers_to_vanish", lambda a, w, t: math.ceil(ratio(a, w, t)))
    assert "expected" in message and "threshold" in message
    assert "expected" in failure("ex02.layers_to_vanish", lambda a, w, t: math.floor(ratio(a, w, t)) + 1)
    assert "expected" in failure("ex02.layers_to_vanish", lambda a, w, t: math.floor(ratio(a, w, t)))  # one short

    def not_strict(a, w, t):  # stops when the bound reaches the threshold, not when it drops below
        depth = 1
        while (SUP[a] * w) ** depth > t:
            depth += 1
        return depth

    assert "expected" in failure("ex02.layers_to_vanish", not_strict)
    assert "return an int" in failure("ex02.layers_to_vanish", lambda a, w, t: float(math.floor(ratio(a, w, t)) + 1))


def test_saturated_fraction_wrong_answers():
    def sigmoid_rule_for_both(a, out, margin=0.05):
        return float(((out < margin) | (out > 1 - margin)).float().mean())

    def not_strict(a, out, margin=0.05):
        mask = ((out <= margin) | (out >= 1 - margin)) if a == "sigmoid" else out.abs() >= 1 - margin
        return float(mask.float().mean())

    def upper_only(a, out, margin=0.05):
        return float((out > 1 - margin).float().mean()) if a == "tanh" else sigmoid_rule_for_both(a, out, margin)

    def fixed_margin(a, out, margin=0.05):
        return sigmoid_rule_for_both(a, out) if a == "sigmoid" else float((out.abs() > 0.95).float().mean())

    def counts(a, out, margin=0.05):
        mask = ((out < margin) | (out > 1 - margin)) if a == "sigmoid" else out.abs() > 1 - margin
        return float(mask.sum())

    def wrong_default(a, out, margin=0.1):
        mask = ((out < margin) | (out > 1 - margin)) if a == "sigmoid" else out.abs() > 1 - margin
        return float(mask.float().mean())

    for wrong in (sigmoid_rule_for_both, not_strict, upper_only, fixed_margin, counts, wrong_default):
        assert "expected" in failure("ex02.saturated_fraction", wrong), wrong.__name__


def test_saturated_fraction_distance_formulation_passes():
    def distance(a, out, margin=0.05):
        gap = torch.minimum(out, 1 - out) if a == "sigmoid" else 1 - out.abs()
        return (gap < margin).double().mean().item()

    for seed in SEEDS:
        assert run_question("ex02.saturated_fraction", distance, seed=seed).passed
