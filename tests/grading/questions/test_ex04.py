"""vgcourse.grading.questions.ex04 (the ReLU fix): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from fixtures.question_answers import SEEDS, failure

from vgcourse.grading import run_question


def test_leaky_relu_gain_wrong_answers():
    qid = "ex04.leaky_relu_gain"
    assert "multiplies the signal's variance by" in failure(qid, lambda slope: 2.0)              # He's gain for any slope
    assert "multiplies the signal's variance by" in failure(qid, lambda slope: 1 + slope**2)     # upside down
    assert "multiplies the signal's variance by" in failure(qid, lambda slope: 2 / (1 + slope))  # slope not squared
    assert "multiplies the signal's variance by" in failure(qid, lambda slope: 1 / (1 + slope**2))  # the variance halved
    assert "expected a positive number" in failure(qid, lambda slope: -2 / (1 + slope**2))
    assert "expected a positive number" in failure(qid, lambda slope: "2 / (1 + slope²)")


def test_leaky_relu_gain_written_another_way_or_measured_passes():
    def measured(slope):  # the learner's own measurement, 10⁵ draws: well inside the 2 % tolerance
        z = torch.randn(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return float(z.pow(2).mean() / F.leaky_relu(z, slope).pow(2).mean())

    for seed in SEEDS:
        assert run_question("ex04.leaky_relu_gain", lambda slope: torch.tensor(1 / ((1 + slope * slope) / 2)),
                            seed=seed).passed
        assert run_question("ex04.leaky_relu_gain", measured, seed=seed).passed
    message = run_question("ex04.leaky_relu_gain", lambda slope: 2 / (1 + slope**2), seed=0).message
    assert message.count("(measured)") == 5 and "slope 0: your gain 2 " in message


def test_dead_fraction_wrong_answers():
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).float().mean()))       # entries
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(1).float().mean()))  # examples
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out < 1e-6).all(0).float().mean()))
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(0).sum()))          # a count
    by_sums = lambda out: (out.sum(0) == 0).double().mean().item()  # noqa: E731  (outputs are >= 0)
    for seed in SEEDS:
        assert run_question("ex04.dead_fraction", by_sums, seed=seed).passed
