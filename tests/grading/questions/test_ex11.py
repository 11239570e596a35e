"""vgcourse.grading.questions.ex11 (the Jacobian view): plausible wrong answers fail with a message
that says what is wrong (what every question shares is in test_every_question.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from fixtures.question_answers import assert_fails_with, failure, solution

from vgcourse.grading import get_question, run_question
from vgcourse.grading.calls.ex11 import FAMILIES, activation_of
from vgcourse.grading.questions.ex11 import SLOPE_AT_ZERO
from vgcourse.models import linear_layers


def test_the_slopes_at_zero_are_those_autograd_finds():
    for family, f in FAMILIES.items():
        x = torch.zeros((), dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(f(x), x)
        assert float(slope) == pytest.approx(SLOPE_AT_ZERO[family], rel=1e-12), family
    f = activation_of({"family": "erf", "a": 1.5, "b": 0.5})
    assert float(f(torch.tensor(1.0))) == pytest.approx(1.5 * math.erf(0.5))


def test_isometry_gain_wrong_answers():
    def slope(f):
        x = torch.zeros((), dtype=torch.float64, requires_grad=True)
        return float(torch.autograd.grad(f(x), x)[0])

    assert "the slope f'(0) itself" in failure("ex11.isometry_gain", slope)
    assert "expected" in failure("ex11.isometry_gain", lambda f: 1.0)                       # tanh's gain for all
    assert "expected" in failure("ex11.isometry_gain", lambda f: 1 / float(f(torch.tensor(1.0))))  # 1 / f(1)
    assert "expected a number" in failure("ex11.isometry_gain", lambda f: "4")
    # a finite difference is a right answer written another way
    assert run_question("ex11.isometry_gain", lambda f: 2e-4 / float(f(torch.tensor(1e-4, dtype=torch.float64))
                                                                     - f(torch.tensor(-1e-4, dtype=torch.float64))),
                        seed=0).passed


def _jacobian(model, x):
    return torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), x)


def test_singular_values_wrong_answers():
    qid = "ex11.singular_values"
    assert_fails_with(qid, lambda m, x: torch.linalg.svdvals(_jacobian(m, x)).flip(0), "largest first")
    assert_fails_with(qid, lambda m, x: torch.linalg.svdvals(linear_layers(m)[0].weight.detach()), "should be")
    assert_fails_with(qid, lambda m, x: torch.linalg.eigvals(_jacobian(m, x)[:1, :1]).real, "1-D tensor of")
    assert_fails_with(qid, lambda m, x: _jacobian(m, x).abs().sum(1), "")   # row norms are not singular values
    # float32, on the model as given, is precise enough
    assert run_question(qid, lambda m, x: torch.linalg.svdvals(_jacobian(m, x)), seed=0).passed


def _lsuv(rescalings, use_variance=False, measure_all_first=False, touch_bias=False):
    """An LSUV answer with a chosen mistake: at most ``rescalings`` per layer, dividing by the variance,
    measuring every layer before rescaling any, or zeroing the biases."""
    def lsuv_(model, x):
        linears = linear_layers(model)
        if measure_all_first:
            outputs = []
            handles = [linear.register_forward_hook(lambda m, i, o: outputs.append(o)) for linear in linears]
            with torch.no_grad():
                model(x)
            for handle in handles:
                handle.remove()
            with torch.no_grad():
                for linear, output in zip(linears, outputs):
                    linear.weight.div_(output.std())
            return
        for linear in linears:
            for _ in range(rescalings):
                outputs = []
                handle = linear.register_forward_hook(lambda m, i, o: outputs.append(o))
                with torch.no_grad():
                    model(x)
                handle.remove()
                variance = float(outputs[0].var())
                if abs(variance - 1) < 0.1:
                    break
                with torch.no_grad():
                    linear.weight.div_(variance if use_variance else math.sqrt(variance))
                    if touch_bias:
                        linear.bias.zero_()
    return lsuv_


def test_lsuv_wrong_answers():
    qid = "ex11.lsuv"
    assert "Measure each layer after rescaling the ones below it" in failure(qid, _lsuv(10, measure_all_first=True))
    assert "variance" in failure(qid, _lsuv(10, use_variance=True))
    assert "repeat until it is within 0.1" in failure(qid, _lsuv(1))   # biases make one rescaling inexact
    assert "bias changed" in failure(qid, _lsuv(10, touch_bias=True))

    def new_parameters(model, x):
        for linear in linear_layers(model):
            linear.weight = torch.nn.Parameter(linear.weight.detach() * 1.0)

    assert "in place" in failure(qid, new_parameters)

    def redrawn(model, x):
        with torch.no_grad():
            for linear in linear_layers(model):
                linear.weight.copy_(torch.randn_like(linear.weight))
        _lsuv(10)(model, x)

    assert "times one positive number" in failure(qid, redrawn)
    assert run_question(qid, _lsuv(10), seed=0).passed


def test_the_solution_leaves_the_given_model_unchanged_when_computing_singular_values():
    question = get_question("ex11.singular_values")
    case = question.cases(torch.Generator().manual_seed(3))[0]
    from vgcourse.grading.calls.ex11 import given_model
    model = given_model(case)
    before = copy.deepcopy(model.state_dict())
    solution("ex11.singular_values")(model, case["x"])
    assert all(torch.equal(before[k], v) and v.dtype == torch.float32 for k, v in model.state_dict().items())
