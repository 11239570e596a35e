"""Exercise 10, capstone: its rules, and how a grading kernel calls the answers (no reference answers here).

The rules are public — the exercise imports them (``from vgcourse.grading.calls import ex10 as
rules``) — and the grader's question (:mod:`vgcourse.grading.questions.ex10`) uses these same values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from vgcourse.data import digits
from vgcourse.experiments import BASELINE, Setup
from vgcourse.grading.answering import Call, Case
from vgcourse.models import DeepMLP, deep_mlp
from vgcourse.mystery import FrozenBatchNorm1d


PROBLEMS = ("vanishing", "exploding", "dead", "healthy")
"""The answers ``diagnose_model`` may give."""

DIAGNOSE_CASES = 6
"""Models one ``ex10.diagnose`` check hands the answer: every problem at least once."""

DEPTH = BASELINE.depth
MAX_WIDTH = 64
MAX_EPOCHS = 5
MIN_BATCH_SIZE = 16  # with epochs, bounds the number of steps: the budget is in steps, not just epochs
MIN_ACCURACY = 0.85
FIX_SEEDS = 3
"""The check trains the answer's set-up once per seed, this many random seeds, and grades the median."""

WIDTH = 64
"""Width of the models ``ex10.diagnose`` hands the answer."""


def build_case_model(case: Case) -> DeepMLP:
    """The untrained digits classifier a ``ex10.diagnose`` case describes: a ``deep_mlp`` with the
    case's depth, activation, init and weight scale, its hidden biases set to ``hidden_bias`` (if
    not None), and with ``frozen_norm`` a ``FrozenBatchNorm1d`` after every hidden linear map."""
    model = deep_mlp(64, 10, case["depth"], WIDTH, activation=case["activation"], init=case["init"],
                     weight_scale=case["weight_scale"], batch_norm=case["frozen_norm"], seed=case["seed"])
    for layer in list(model)[:-1]:
        if case["frozen_norm"]:
            layer.norm = FrozenBatchNorm1d(WIDTH)
        if case["hidden_bias"] is not None:
            nn.init.constant_(layer.linear.bias, case["hidden_bias"])
    return model


def _diagnose_call(answer: Any, case: Case) -> Any:
    return answer(build_case_model(case), digits(seed=case["data_seed"]))


def _fix_call(answer: Any, case: Case) -> dict[str, Any]:
    setup = answer()
    if not isinstance(setup, Setup):
        raise TypeError(f"fixed_setup() must return a vgcourse.experiments.Setup, got {type(setup).__name__}")
    return dataclasses.asdict(setup)


DIAGNOSE = Call(
    id="ex10.diagnose",
    answer_name="diagnose_model",
    run=_diagnose_call,
    # diagnose() (and examine(), which calls it) would write the rule for the learner
    answered_by=("vgcourse.diagnosis.diagnose",),
)

FIX = Call(
    id="ex10.fix",
    answer_name="fixed_setup",
    run=_fix_call,
)

CALLS = (DIAGNOSE, FIX)
