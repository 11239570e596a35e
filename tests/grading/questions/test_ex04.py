"""vgcourse.grading.questions.ex04 (the ReLU fix): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from fixtures.question_answers import SEEDS, failure

from vgcourse.grading import run_question


def test_leaky_relu_derivative_wrong_answers():
    def one_at_zero(x, slope):
        return torch.where(x >= 0, torch.ones_like(x), torch.full_like(x, slope))

    assert "wrong only at x = 0" in failure("ex04.leaky_relu_derivative", one_at_zero)
    assert "values differ" in failure("ex04.leaky_relu_derivative",
                                      lambda x, slope: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01)))
    assert "values differ" in failure("ex04.leaky_relu_derivative", lambda x, slope: (x > 0).to(x.dtype))
    assert "values differ" in failure("ex04.leaky_relu_derivative", lambda x, slope: F.leaky_relu(x, slope))
    assert "expected shape" in failure("ex04.leaky_relu_derivative",
                                       lambda x, slope: torch.where(x > 0, 1.0, slope).flatten()[:-1])
    assert "expected a tensor" in failure("ex04.leaky_relu_derivative", lambda x, slope: slope)


def test_leaky_relu_derivative_by_autograd_passes():
    def by_autograd(x, slope):
        x = x.detach().clone().requires_grad_()
        F.leaky_relu(x, slope).sum().backward()
        return x.grad

    for seed in SEEDS:
        assert run_question("ex04.leaky_relu_derivative", by_autograd, seed=seed).passed


def test_dead_fraction_wrong_answers():
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).float().mean()))       # entries
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(1).float().mean()))  # examples
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out < 1e-6).all(0).float().mean()))
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(0).sum()))          # a count
    by_sums = lambda out: (out.sum(0) == 0).double().mean().item()  # noqa: E731  (outputs are >= 0)
    for seed in SEEDS:
        assert run_question("ex04.dead_fraction", by_sums, seed=seed).passed
