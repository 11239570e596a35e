"""Mystery training runs for the capstone: a model and the recipe its owner trains it with, each
with one problem (or none) to find.

    exam = examine("A")        # trains run A under a GradientMonitor (histograms on)
    exam.start, exam.end       # diagnose() of its first step and of its last steps
    print(evidence_table({"A": exam}))
    reveal("A")                # the answer, afterwards

Some problems are visible in the model as built (its first step), one only after training, one
only through time (a recurrent network's ``‖∂L/∂h_t‖``, which no per-layer number shows), and
two runs look alarming (saturated units, batch norm) without being what they seem.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from torch import nn

from vgcourse.data import Split, adding_problem, digits
from vgcourse.diagnosis import Diagnosis, diagnose
from vgcourse.models import SequenceModel, deep_mlp, sequence_model
from vgcourse.monitor import DIAGNOSIS, GradientMonitor, MonitorOptions
from vgcourse.probes.recurrence import hidden_state_gradients
from vgcourse.training import History, train
from vgcourse.validation import check_int

PROBLEMS = ("vanishing", "exploding", "dead", "healthy")
"""The calls a learner makes about a mystery run."""

JUDGED = ("start", "end", "time")
"""Where a run's problem shows: its first step (the model as built), its last steps (what training
made of it), or the gradient through a recurrent network's time steps."""

MYSTERY_MONITOR = DIAGNOSIS.changed(histograms=True, hist_every=10)
"""What :func:`examine` records: norms and activation statistics at every step, histograms every 10
(so ``vgcourse.plots.histograms_figure`` has several steps to show)."""

TIME_BATCH = 256
"""Test sequences the through-time gradient of a recurrent run is measured on."""


class FrozenBatchNorm1d(nn.BatchNorm1d):
    """A ``BatchNorm1d`` that stays in evaluation mode: ``train()`` leaves it in ``eval()``.

    It normalizes with its stored running statistics (mean 0 and variance 1 until something
    updates them, and nothing does: only train mode updates them), never with the batch's. Frozen
    batch norm is a fine-tuning device (torchvision's ``FrozenBatchNorm2d``); a network trained
    from scratch with it has no normalization at all.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.train(False)  # nn.Module.__init__ sets training = True without calling train()

    def train(self, mode: bool = True) -> FrozenBatchNorm1d:
        return super().train(False)


@dataclass(frozen=True)
class Answer:
    """What is wrong with a mystery run.

    Attributes:
        problem: one of :data:`PROBLEMS`.
        judged: where it shows, one of :data:`JUDGED`.
        verdicts: the ``diagnose()`` verdicts that name it, judged there (an explosion may show
            as "exploding" or, once a gradient overflows, as "nonfinite").
        cause: how the run was built to have it.
    """

    problem: str
    judged: str
    verdicts: tuple[str, ...]
    cause: str


@dataclass(frozen=True)
class Mystery:
    """One mystery run: an untrained model, its data and its owner's training recipe."""

    letter: str
    model: nn.Module
    data: Split
    lr: float
    optimizer: str = "sgd"
    epochs: int = 1
    batch_size: int = 32


def _digits_mlp(**options: object) -> Callable[[int], nn.Module]:
    return lambda seed: deep_mlp(64, 10, width=64, seed=seed, **options)


def _biased(bias: float, **options: object) -> Callable[[int], nn.Module]:
    def build(seed: int) -> nn.Module:
        model = deep_mlp(64, 10, width=64, seed=seed, **options)
        for layer in list(model)[:-1]:
            nn.init.constant_(layer.linear.bias, bias)
        return model
    return build


def _frozen_norm(**options: object) -> Callable[[int], nn.Module]:
    def build(seed: int) -> nn.Module:
        model = deep_mlp(64, 10, width=64, batch_norm=True, seed=seed, **options)
        for layer in list(model)[:-1]:
            layer.norm = FrozenBatchNorm1d(layer.norm.num_features)
        return model
    return build


def _rnn(seed: int) -> nn.Module:
    return sequence_model(2, 32, 1, cell="rnn", seed=seed)


ADDING_LENGTH = 25
"""Sequence length of the recurrent mystery's adding problem (notebook 08's)."""


@functools.cache
def _data(kind: str) -> Split:
    return digits(seed=0) if kind == "digits" else adding_problem(ADDING_LENGTH, n_train=1000, n_test=500, seed=0)


# letter -> (answer, data, build(seed), training recipe)
_RUNS: dict[str, tuple[Answer, str, Callable[[int], nn.Module], dict]] = {
    "A": (Answer("exploding", "start", ("exploding", "nonfinite"),
                 "ReLU with He initialization, every weight quadrupled: each layer multiplies the signal "
                 "by about 4 going forward and the gradient by about 4 going back, so every layer's weight "
                 "gradient is huge by a similar amount: a flat profile, too high everywhere"),
          "digits", _digits_mlp(depth=8, activation="relu", init="he", weight_scale=4.0), dict(lr=0.1)),
    "B": (Answer("healthy", "start", ("healthy",), "tanh with Glorot/Xavier initialization at a moderate depth (6)"),
          "digits", _digits_mlp(depth=6, activation="tanh", init="xavier"), dict(lr=0.1)),
    "C": (Answer("vanishing", "start", ("vanishing",), "12 sigmoid layers at PyTorch's default initialization"),
          "digits", _digits_mlp(depth=12, activation="sigmoid"), dict(lr=0.3)),
    "D": (Answer("dead", "start", ("dead",), "ReLU whose hidden biases were set to -10: no unit ever activates"),
          "digits", _biased(-10.0, depth=8, activation="relu", init="he"), dict(lr=0.1)),
    "E": (Answer("vanishing", "time", ("vanishing",),
                 f"a vanilla tanh RNN on the adding problem (T = {ADDING_LENGTH}): the gradient reaching an "
                 "early time step vanishes, while every weight matrix gets a fair gradient, because each one "
                 "is used at every step, including the last"),
          "adding", _rnn, dict(lr=0.02, optimizer="adam")),
    "F": (Answer("healthy", "start", ("healthy",),
                 "tanh with Xavier initialization, every weight quadrupled, 4 layers: most units are saturated, "
                 "yet the gradient reaches layer 1 and the network learns"),
          "digits", _digits_mlp(depth=4, activation="tanh", init="xavier", weight_scale=4.0),
          dict(lr=0.01, optimizer="adam")),
    "G": (Answer("dead", "end", ("dead",),
                 "a healthy ReLU network with He initialization, trained with Adam at lr 0.3 (300 times the usual "
                 "1e-3): the first updates push the units' inputs negative for every example, and a ReLU that "
                 "outputs 0 everywhere gets no gradient to recover"),
          "digits", _digits_mlp(depth=8, activation="relu", init="he"), dict(lr=0.3, optimizer="adam")),
    "H": (Answer("vanishing", "start", ("vanishing",),
                 "10 sigmoid layers with batch norm frozen in evaluation mode (FrozenBatchNorm1d): it normalizes "
                 "with its stored statistics, mean 0 and variance 1, which leaves every pre-activation as it "
                 "was, so the network is the failing baseline; its running means are still 0 after training"),
          "digits", _frozen_norm(depth=10, activation="sigmoid"), dict(lr=0.3)),
    "I": (Answer("exploding", "start", ("exploding", "nonfinite"),
                 "16 tanh layers with Xavier initialization, every weight multiplied by 8 (notebook 02's scale): "
                 "most units saturate, yet each layer multiplies the backward signal by about 2, so the "
                 "gradient grows toward the input"),
          "digits", _digits_mlp(depth=16, activation="tanh", init="xavier", weight_scale=8.0), dict(lr=0.1)),
}
MYSTERIES = tuple(_RUNS)
"""The letters of the mystery runs."""


def _check(letter: object) -> str:
    if letter not in _RUNS:
        raise ValueError(f"unknown mystery run {letter!r}; choose one of {list(MYSTERIES)}")
    return letter


def mystery(letter: str, seed: int = 0) -> Mystery:
    """Mystery run ``letter``: its untrained model (weights from ``seed``), data and recipe.

    Args:
        letter: one of :data:`MYSTERIES`.
        seed: decides the initial weights (the data are always the same).

    Returns:
        a :class:`Mystery`; the digits runs classify ``digits(seed=0)``, the recurrent one
        regresses the adding problem.
    """
    _check(letter)
    check_int(seed, "seed", minimum=0)
    _, kind, build, recipe = _RUNS[letter]
    return Mystery(letter, build(seed), _data(kind), **recipe)


def mystery_model(letter: str, seed: int = 0) -> nn.Module:
    """The untrained model of mystery run ``letter`` (see :func:`mystery`)."""
    return mystery(letter, seed).model


def reveal(letter: str) -> Answer:
    """The answer for mystery run ``letter``."""
    return _RUNS[_check(letter)][0]


@dataclass
class Examination:
    """A mystery run trained by its recipe under a ``GradientMonitor``, with what it showed.

    Attributes:
        letter: the run.
        model: the model, as training left it.
        history: its training history (``diverged_at`` set if the loss blew up).
        monitor: the closed monitor, histograms included.
        start: ``diagnose(monitor, window=1, at="start")``: the model as built.
        end: ``diagnose(monitor, at="end")``: the model as training left it.
        time_gradients: for a recurrent model, ``‖∂L/∂h_t‖`` for t = 1 ... T before training
            (``vgcourse.probes.recurrence.hidden_state_gradients``); ``None`` otherwise.
    """

    letter: str
    model: nn.Module
    history: History
    monitor: GradientMonitor
    start: Diagnosis
    end: Diagnosis
    time_gradients: list[float] | None

    @property
    def time_ratio(self) -> float:
        """``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖`` before training; NaN for a model without time steps."""
        if self.time_gradients is None:
            return math.nan
        return self.time_gradients[0] / self.time_gradients[-1]


def examine(letter: str, seed: int = 0, order: int = 0, options: MonitorOptions = MYSTERY_MONITOR) -> Examination:
    """Train mystery run ``letter`` by its recipe under a ``GradientMonitor`` and diagnose it.

    Args:
        letter: one of :data:`MYSTERIES`.
        seed: the model's initial weights.
        order: the order of training examples (``train``'s ``seed``).
        options: what the monitor records (default :data:`MYSTERY_MONITOR`, histograms on).

    Returns:
        an :class:`Examination`. A run whose loss blows up stops there (``on_divergence="stop"``)
        and its monitor keeps the steps before it.
    """
    check_int(order, "order", minimum=0)
    run = mystery(letter, seed)
    time_gradients = None
    if isinstance(run.model, SequenceModel):  # the recurrent run: measure through time first
        time_gradients = hidden_state_gradients(run.model, run.data.x_test[:TIME_BATCH], run.data.y_test[:TIME_BATCH])
    with GradientMonitor(run.model, options) as monitor:
        history = train(run.model, run.data, epochs=run.epochs, lr=run.lr, batch_size=run.batch_size,
                        optimizer=run.optimizer, seed=order, progress=False, on_divergence="stop")
    return Examination(letter, run.model, history, monitor, diagnose(monitor, window=1, at="start"),
                       diagnose(monitor, at="end"), time_gradients)


def decision_margin(exam: Examination) -> float:
    """How many times past its threshold the number that decides ``exam``'s answer lies (>= 1: the
    answer shows; inf: as far as it can be). The thresholds are ``diagnose``'s defaults.

    * exploding: the largest layer gradient norm over ``explode_norm``, or the first/last ratio
      over ``explode_ratio``, whichever is larger;
    * vanishing: ``vanish_ratio`` over the first/last ratio (through time: over
      ``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖``);
    * dead: the live share a dead layer may keep, ``1 - dead_threshold``, over the share of the
      deadest layer's units still alive (inf when none is);
    * healthy: the smallest of ``ratio / vanish_ratio``, ``explode_ratio / ratio`` and
      ``explode_norm / largest norm``: how far inside every gradient threshold the run stays.
    """
    if not isinstance(exam, Examination):
        raise TypeError(f"exam must be an Examination (from examine), got {type(exam).__name__}")
    answer = reveal(exam.letter)
    found = exam.end if answer.judged == "end" else exam.start
    limits = found.thresholds
    ratio = exam.time_ratio if answer.judged == "time" else found.grad_norm_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        if answer.problem == "exploding":
            margin = max(found.max_grad_norm / limits["explode_norm"], ratio / limits["explode_ratio"])
        elif answer.problem == "vanishing":
            margin = limits["vanish_ratio"] / ratio
        elif answer.problem == "dead":
            alive = 1 - found.dead_fraction
            margin = math.inf if alive == 0 else (1 - limits["dead_threshold"]) / alive
        else:
            margin = min(ratio / limits["vanish_ratio"], limits["explode_ratio"] / ratio,
                         limits["explode_norm"] / found.max_grad_norm)
    return float(margin) if not math.isnan(margin) else 0.0


def _number(value: float, spec: str = ".1e") -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, spec)


def _result(exam: Examination) -> str:
    history = exam.history
    if history.diverged:
        return f"diverged at step {history.diverged_at}"
    if history.test_accuracy:
        return f"accuracy {history.test_accuracy[0]:.0%} → {history.test_accuracy[-1]:.0%}"
    return f"MSE {history.test_loss[0]:.3f} → {history.test_loss[-1]:.3f}"


def evidence_table(exams: Mapping[str, Examination]) -> str:
    """The numbers of every examined run, one row each, without verdicts: at the first step the
    first/last gradient-norm ratio, the largest layer gradient norm, the most saturated and the
    deadest layer's fractions and (recurrent run) ``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖``; at the end of training
    the deadest layer's fraction and the test result."""
    if not isinstance(exams, Mapping) or not all(isinstance(e, Examination) for e in exams.values()):
        raise TypeError("exams must map letters to Examinations (from examine)")
    header = (f"{'':4}{'── first step: the model as built ──':^58}{'── after training ──':^34}\n"
              f"{'run':<4}{'layer1/last':>12}{'largest ‖∇W‖':>14}{'saturated':>11}{'dead':>7}{'h_1/h_T':>10}"
              f"{'dead':>8}   {'test'}")
    rows = [header]
    for letter, exam in exams.items():
        s, e = exam.start, exam.end
        rows.append(f"{letter:<4}{_number(s.grad_norm_ratio):>12}{_number(s.max_grad_norm):>14}"
                    f"{_number(s.saturated_fraction, '.0%'):>11}{_number(s.dead_fraction, '.0%'):>7}"
                    f"{_number(exam.time_ratio):>10}{_number(e.dead_fraction, '.0%'):>8}   {_result(exam)}")
    return "\n".join(rows)


def check_calls(calls: object) -> dict[str, str | None]:
    """``calls`` as a dict letter -> problem or ``None``, or a ``ValueError`` naming what is wrong."""
    if not isinstance(calls, Mapping):
        raise ValueError(f"calls must be a dict of letter -> one of {list(PROBLEMS)} (or None), got {calls!r}")
    for letter, call in calls.items():
        _check(letter)
        if call is not None and call not in PROBLEMS:
            raise ValueError(f"unknown call {call!r} for run {letter}; choose one of {list(PROBLEMS)} (or None)")
    return dict(calls)


def calls_report(calls: Mapping[str, str | None], exams: Mapping[str, Examination]) -> str:
    """The answers next to the learner's ``calls`` and to ``diagnose()``'s verdicts, one run a line,
    with the cause, and a score line.

    Args:
        calls: letter -> the learner's call (one of :data:`PROBLEMS`) or ``None`` (no call).
        exams: letter -> :class:`Examination` of that run.
    """
    calls = check_calls(calls)
    lines, right, made = [], 0, 0
    for letter, exam in exams.items():
        answer, call = reveal(letter), calls.get(letter)
        if call is not None:
            made += 1
            right += call == answer.problem
        mark = "no call" if call is None else f"you: {call} {'✓' if call == answer.problem else '✗'}"
        lines.append(f"{letter}: {answer.problem} (shows {dict(start='at the first step', end='after training', time='through time')[answer.judged]}; "
                     f"{mark}; diagnose() at the first step: {exam.start.verdict}, after training: {exam.end.verdict})\n"
                     f"   {answer.cause}")
    score = (f"{right} of {made} calls right" if made else
             "You made no call: write yours in the cell above (my_calls) and run both cells again.")
    return "\n".join(lines + [score])
