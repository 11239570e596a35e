"""vgcourse.grading.questions.ex10 (the capstone): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from fixtures.question_answers import solution

from vgcourse.experiments import BASELINE
from vgcourse.grading import get_question, run_question


def test_diagnose_rejects_constant_and_unknown_verdicts():
    for verdict in ("vanishing", "exploding", "dead", "healthy"):
        result = run_question("ex10.diagnose", lambda model, data, v=verdict: v, seed=0)
        assert result.points == 0 and "expected" in result.message
    result = run_question("ex10.diagnose", lambda model, data: "fine", seed=0)
    assert result.points == 0 and "must return one of" in result.message


def test_diagnose_cases_defeat_reading_the_architecture():
    def by_architecture(model, data):  # what the activation and the biases alone suggest
        first = model.layer1
        if isinstance(first.act, nn.Sigmoid):
            return "vanishing"
        if isinstance(first.act, nn.Tanh):
            return "healthy"
        return "dead" if float(first.linear.bias.detach().max()) < -5 else "exploding"

    question = get_question("ex10.diagnose")
    seeds = [seed for seed in range(10)
             if any(c["problem"] == "healthy" and c["activation"] != "tanh"
                    for c in question.cases(torch.Generator().manual_seed(seed)))][:3]
    assert seeds
    for seed in seeds:
        assert run_question(question, by_architecture, seed=seed).points == 0


def test_diagnose_has_one_case_of_each_problem_in_random_order():
    question = get_question("ex10.diagnose")
    orders = set()
    for seed in range(6):
        problems = [c["problem"] for c in question.cases(torch.Generator().manual_seed(seed))]
        assert sorted(problems) == sorted(["vanishing", "exploding", "dead", "healthy"])
        orders.add(tuple(problems))
    assert len(orders) > 1


@pytest.mark.parametrize(("setup", "message"), [
    (BASELINE, "epochs must be an integer from 1 to 5"),
    (BASELINE.changed(activation="relu", init="he", depth=8, epochs=5), "depth must stay 10"),
    (BASELINE.changed(activation="relu", init="he", width=128, epochs=5), "width must be"),
    (BASELINE.changed(activation="relu", init="he", batch_size=4, epochs=5), "batch_size must be"),
    (BASELINE.changed(activation="swish", epochs=5), "unknown activation"),
])
def test_fix_rejects_rule_breaking_setups(setup, message):
    result = run_question("ex10.fix", lambda: setup, seed=0)
    assert result.points == 0 and "breaks the rules" in result.message and message in result.message


def test_fix_rejects_a_non_setup():
    result = run_question("ex10.fix", lambda: dataclasses.asdict(BASELINE), seed=0)
    assert result.points == 0 and "must return a vgcourse.experiments.Setup" in result.message


def test_fix_fails_the_baseline_within_the_budget():
    result = run_question("ex10.fix", lambda: BASELINE.changed(epochs=5), seed=0)
    assert result.points == 0 and "test accuracy" in result.message and "needs at least 85%" in result.message


def test_fix_grades_the_median_of_three_random_seeds():
    question = get_question("ex10.fix")
    for seed in range(5):
        (case,) = question.cases(torch.Generator().manual_seed(seed))
        assert len(case["seeds"]) == len(set(case["seeds"])) == 3
    result = run_question("ex10.fix", lambda: BASELINE.changed(epochs=5), seed=0)
    seeds = question.cases(torch.Generator().manual_seed(0))[0]["seeds"]
    assert "median test accuracy" in result.message and "over 3 seeds" in result.message
    assert all(f"seed {s}: " in result.message for s in seeds), result.message


def _fake_runs(accuracies):
    """A run_seeds result whose seeds ended at ``accuracies``; None means that seed diverged."""
    from vgcourse.seeds import SeedRun, SeedRuns
    from vgcourse.training import History
    import numpy as np

    runs = [SeedRun(BASELINE, None, History(test_accuracy=[0.1] + ([] if a is None else [a]),
                                            diverged_at=None if a is not None else 17),
                    np.ones((1, 10)), np.zeros(0), []) for a in accuracies]
    return SeedRuns(BASELINE, tuple(range(len(accuracies))), runs, 0.0)


@pytest.mark.parametrize(("accuracies", "passes"), [
    ((0.90, None, 0.86), True),    # one seed diverged (counts as 0), the median still passes
    ((0.95, 0.84, 0.20), False),   # a good best seed is not enough
    ((0.86, 0.86, 0.10), True),
    ((None, None, 0.99), False),
])
def test_fix_passes_on_the_median_and_names_a_diverged_seed(monkeypatch, accuracies, passes):
    from vgcourse.grading.questions import ex10

    monkeypatch.setattr(ex10, "trained_runs", lambda fields, seeds: _fake_runs(accuracies))
    result = run_question("ex10.fix", lambda: BASELINE.changed(activation="tanh", init="xavier", epochs=5), seed=0)
    assert result.passed == passes, result.message
    assert "median test accuracy" in result.message  # on a pass too: the note shows the accuracies
    if None in accuracies:
        assert "diverged at step 17 (counts as 0%)" in result.message


def test_fix_counts_a_set_up_that_diverges_as_failing():
    result = run_question("ex10.fix", lambda: BASELINE.changed(activation="relu", init="he", weight_scale=4.0,
                                                               lr=1.0, epochs=1), seed=0)
    assert result.points == 0 and result.message.count("diverged at step") == 3, result.message


def test_diagnose_solution_passes():
    result = run_question("ex10.diagnose", solution("ex10.diagnose"), seed=11)
    assert result.passed, result.message


@pytest.mark.parametrize(("seed", "data_seed"), [(482796, 34), (460616, 61), (82568, 27)])
def test_diagnose_solution_names_an_explosion_that_ends_in_dead_units(seed, data_seed):
    """Three of 3,000 sampled exploding cases whose first SGD steps kill every unit of a layer
    without an inf or NaN (CI found the first): judged over the last steps they look dead."""
    case = {"problem": "exploding", "depth": 9, "activation": "relu", "init": "he", "weight_scale": 4.0,
            "hidden_bias": None, "seed": seed, "data_seed": data_seed}
    question = get_question("ex10.diagnose")
    assert question.answer.run(solution("ex10.diagnose"), case) == "exploding"


def test_fix_solution_passes_and_shows_its_accuracy(capsys):
    result = run_question("ex10.fix", solution("ex10.fix"), seed=5)
    assert result.passed, result.message
    assert "\n  ex10.fix: median test accuracy" in result.message  # the note, under the pass line
    assert capsys.readouterr().out == ""  # returned, not printed
