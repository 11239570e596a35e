"""Exercise 10, capstone: name what is wrong with a network, then fix the failing baseline on a budget."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from vgcourse.activations import ACTIVATIONS
from vgcourse.experiments import Setup
from vgcourse.grading.cases import random_float, random_int
from vgcourse.grading.calls import ex10 as calls
from vgcourse.grading.calls.ex10 import (  # the rules, public: the exercise shows them
    DEPTH, FIX_SEEDS, MAX_EPOCHS, MAX_WIDTH, MIN_ACCURACY, MIN_BATCH_SIZE, PROBLEMS,
)
from vgcourse.grading.question import Case, Passed, Question, equal_values
from vgcourse.models import INITS
from vgcourse.seeds import SeedRuns, run_seeds
from vgcourse.training import OPTIMIZERS
from vgcourse.validation import check_number, is_int

# ---- ex10.diagnose ----------------------------------------------------------------------------

# One check's models: a slot per model, each a problem and the ways to build an untrained digits
# classifier that has it: (activation, init, weight_scale, hidden bias range or None, frozen batch
# norm, lowest depth, highest depth). Measured at the first step of 200 case sets (batches of 32;
# tests/grading/questions/test_ex10.py checks 40): first/last ratio below 1e-7 when vanishing; the
# flat explosion's largest layer norm above 3e4 (ratio 0.24-1.2); the growing one's ratio 114-608
# with its largest norm 203-1090, so diagnose()'s default thresholds (1e3) nearly always miss it;
# the saturated healthy one's ratio 2.6-6.1, every other healthy one's 0.035-1.8; dead: every unit
# of a layer.
SLOTS: tuple[tuple[str, tuple[tuple[str, str, float, tuple[float, float] | None, bool, int, int], ...]], ...] = (
    ("vanishing", (("sigmoid", "default", 1.0, None, False, 10, 14),
                   ("sigmoid", "default", 1.0, None, True, 10, 12))),   # batch norm, frozen: no help
    ("exploding", (("relu", "he", 4.0, None, False, 8, 10),)),           # huge everywhere, flat profile
    ("exploding", (("tanh", "xavier", 8.0, None, False, 8, 8),)),        # saturated, grows toward the input
    ("dead", (("relu", "he", 1.0, (-10.0, -5.0), False, 6, 9),)),
    ("healthy", (("tanh", "xavier", 4.0, None, False, 4, 4),)),          # most units saturated, still fine
    # healthy in several guises, so that "sigmoid means vanishing" or "ReLU means trouble" fails
    ("healthy", (("tanh", "xavier", 1.0, None, False, 3, 6), ("relu", "he", 1.0, None, False, 3, 6),
                 ("sigmoid", "default", 1.0, None, False, 2, 3))),
)


def _diagnose_case(generator: torch.Generator, slot: int) -> Case:
    problem, recipes = SLOTS[slot]
    activation, init, weight_scale, bias, frozen, low, high = recipes[random_int(generator, 0, len(recipes) - 1)]
    return {
        "problem": problem,  # private (see QUESTIONS): the answer label never goes to the kernel
        "depth": random_int(generator, low, high),
        "activation": activation,
        "init": init,
        "weight_scale": weight_scale,
        "hidden_bias": None if bias is None else round(random_float(generator, *bias), 2),
        "frozen_norm": frozen,
        "seed": random_int(generator, 0, 10**6),
        "data_seed": random_int(generator, 0, 99),
    }


def _diagnose_cases(generator: torch.Generator) -> list[Case]:
    order = torch.randperm(len(SLOTS), generator=generator).tolist()
    return [_diagnose_case(generator, slot) for slot in order]


def _diagnose_compare(got: Any, expected: str, case: Case) -> str | None:
    if got not in PROBLEMS:
        return f"diagnose_model must return one of {list(PROBLEMS)}, got {got!r}"
    return equal_values(got, expected)


# ---- ex10.fix ---------------------------------------------------------------------------------


def _fix_cases(generator: torch.Generator) -> list[Case]:
    seeds: list[int] = []
    while len(seeds) < FIX_SEEDS:  # distinct: run_seeds trains each seed once
        seed = random_int(generator, 0, 10**6)
        if seed not in seeds:
            seeds.append(seed)
    return [{"seeds": seeds}]


def rule_violations(fields: Any) -> list[str]:
    """What is wrong with the ``Setup`` fields ``fields`` under the exercise's rules (empty if nothing)."""
    names = [f.name for f in dataclasses.fields(Setup)]
    if not isinstance(fields, dict) or sorted(fields) != sorted(names):
        return ["the answer is not a Setup"]
    problems = []
    if fields["depth"] != DEPTH or not is_int(fields["depth"]):
        problems.append(f"depth must stay {DEPTH}, got {fields['depth']!r}")
    if not is_int(fields["width"]) or not 1 <= fields["width"] <= MAX_WIDTH:
        problems.append(f"width must be an integer from 1 to {MAX_WIDTH}, got {fields['width']!r}")
    if not is_int(fields["epochs"]) or not 1 <= fields["epochs"] <= MAX_EPOCHS:
        problems.append(f"epochs must be an integer from 1 to {MAX_EPOCHS} (the budget), got {fields['epochs']!r}")
    if not is_int(fields["batch_size"]) or fields["batch_size"] < MIN_BATCH_SIZE:
        problems.append(f"batch_size must be an integer of at least {MIN_BATCH_SIZE} (the budget), "
                        f"got {fields['batch_size']!r}")
    for name, allowed in (("activation", sorted(ACTIVATIONS)), ("init", list(INITS)), ("optimizer", list(OPTIMIZERS))):
        if fields[name] not in allowed:
            problems.append(f"unknown {name} {fields[name]!r} (choose one of {allowed})")
    for name in ("batch_norm", "residual"):
        if not isinstance(fields[name], bool):
            problems.append(f"{name} must be True or False, got {fields[name]!r}")
    for name in ("lr", "weight_scale"):
        try:
            check_number(fields[name], name, low=0)
        except ValueError as error:  # "lr must be a positive finite number, got 0"
            problems.append(str(error))
    return problems


def trained_runs(fields: dict[str, Any], seeds: list[int] | tuple[int, ...]) -> SeedRuns:
    """The set-up ``fields`` trained once per seed in ``seeds``, each on ``digits(seed=seed)``, in
    one batched computation (``vgcourse.seeds.run_seeds``); a seed whose loss blew up is flagged."""
    return run_seeds(Setup(**fields), seeds=tuple(seeds), progress=False)


def _fix_compare(got: Any, expected: float, case: Case) -> str | Passed:
    problems = rule_violations(got)
    if problems:
        return "the set-up breaks the rules: " + "; ".join(problems)
    seeds = case["seeds"]
    runs = trained_runs(got, seeds)
    accuracies = runs.test_accuracy()  # 0 for a diverged seed: it learned nothing usable
    median = float(np.median(accuracies))
    each = ", ".join(f"seed {seed}: " + (f"diverged at step {r.history.diverged_at} (counts as 0%)" if r.diverged
                                         else f"{accuracy:.1%}")
                     for seed, r, accuracy in zip(seeds, runs, accuracies))
    result = (f"median test accuracy {median:.1%} over {len(seeds)} seeds after {got['epochs']} epoch(s) "
              f"({each}; the median needs at least {expected:.0%})")
    return result if median < expected else Passed(result)


QUESTIONS = (
    Question(
        answer=calls.DIAGNOSE,
        points=4,
        task=f"return one of {list(PROBLEMS)} for an untrained digits classifier (model, data), from your own rule "
             f"on its gradient norms, saturated and dead units (diagnose() is off limits); {calls.DIAGNOSE_CASES} "
             f"models you have not seen, every problem at least once",
        hint="Calibrate on labelled examples: notebook 10's mystery runs (mystery_model(letter) and reveal(letter)) "
             "and networks you build with deep_mlp. Print your numbers for each one, then pick thresholds with "
             "room to spare on both sides. Ask what each number means when the model has no working unit, and "
             "whether a gradient that grows toward the input needs to grow as far as diagnose()'s default "
             "threshold before it is a problem (notebook 02 says when).",
        cases=_diagnose_cases,
        expected=lambda case: case["problem"],
        private=("problem",),
        compare=_diagnose_compare,
    ),
    Question(
        answer=calls.FIX,
        points=4,
        task=f"return a Setup with depth {DEPTH}, width ≤ {MAX_WIDTH}, epochs ≤ {MAX_EPOCHS}, batch_size ≥ "
             f"{MIN_BATCH_SIZE} whose median test accuracy on the digits over {FIX_SEEDS} random seeds is at least "
             f"{MIN_ACCURACY:.0%}",
        hint="Fix the product of per-layer factors (an activation with its matching initialization, normalization "
             "or skips), then make 5 epochs count: the optimizer and learning rate matter as much.",
        cases=_fix_cases,
        expected=lambda case: MIN_ACCURACY,
        compare=_fix_compare,
    ),
)
