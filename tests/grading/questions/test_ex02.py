"""vgcourse.grading.questions.ex02 (saturation and depth): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import math

import pytest
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


WEIGHT_PART = {"default": 1 / math.sqrt(3), "xavier": 1.0}
DERIVATIVE_PART = {"sigmoid": 0.25, "tanh": 1.0, "relu": math.sqrt(0.5)}


def test_predicted_factor_from_variances_passes():
    def from_variances(activation, init, weight_scale):  # √(n Var(w) E[f'²]) written with the variances
        n = 64
        variance = (1 / (3 * n) if init == "default" else 2 / (n + n)) * weight_scale**2
        mean_square_slope = {"sigmoid": 1 / 16, "tanh": 1.0, "relu": 0.5}[activation]
        return math.sqrt(n * variance * mean_square_slope)

    for seed in SEEDS:
        assert run_question("ex02.predicted_factor", from_variances, seed=seed).passed


def test_predicted_factor_wrong_answers():
    def right(a, i, s):
        return WEIGHT_PART[i] * s * DERIVATIVE_PART[a]

    assert "too large" in failure("ex02.predicted_factor", lambda a, i, s: WEIGHT_PART[i] * s * SUP[a])  # ReLU: sup f'
    assert "too large" in failure("ex02.predicted_factor", lambda a, i, s: s * DERIVATIVE_PART[a])       # Xavier's gain for both
    assert "too small" in failure("ex02.predicted_factor", lambda a, i, s: right(a, i, s) / math.sqrt(3) if i == "default" else right(a, i, s))  # Var 1/(3n) not rooted
    assert "too large" in failure("ex02.predicted_factor", lambda a, i, s: WEIGHT_PART[i] * DERIVATIVE_PART[a])  # scale ignored
    assert "too large" in failure("ex02.predicted_factor", lambda a, i, s: 1.15 * 1.1 * right(a, i, s))     # 26 % off
    assert "expected a number" in failure("ex02.predicted_factor", lambda a, i, s: str(right(a, i, s)))


def test_predicted_factor_is_graded_against_a_measurement():
    # The reference is the measured factor of the network the case describes, not the formula.
    from vgcourse.data import digits
    from vgcourse.grading import get_question
    from vgcourse.models import deep_mlp
    from vgcourse.probes.layers import fitted_decay_factor
    from vgcourse.probes.hidden_states import hidden_gradient_norms

    question = get_question("ex02.predicted_factor")
    case = {"activation": "sigmoid", "init": "xavier", "weight_scale": 1.0, "seed": 3}
    data = digits(seed=0)
    model = deep_mlp(64, 10, depth=20, width=64, activation="sigmoid", init="xavier", seed=3)
    norms = hidden_gradient_norms(model, data.x_train[:256], data.y_train[:256])
    measured = fitted_decay_factor(norms[1:][::-1])
    assert question.expected(case) == pytest.approx(measured)
    assert 0.2 < measured < 0.25  # below the small-input prediction 1/4, within the 15 % tolerance


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
