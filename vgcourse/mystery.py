"""Mystery models for the capstone: digit classifiers, each with one problem (or none) to find.

The learner gets a model by letter, watches it train with a ``GradientMonitor`` and names what
is wrong; :func:`reveal` gives the answer afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vgcourse.models import DeepMLP, deep_mlp


@dataclass(frozen=True)
class Answer:
    """What is wrong with a mystery model.

    Attributes:
        problem: the name of the problem ("vanishing", "exploding", "dead" or "healthy").
        verdicts: the ``diagnose()`` verdicts that identify it (an explosion may show as
            "exploding" or, once a gradient overflows, as "nonfinite").
        cause: how the model was built to have it.
    """

    problem: str
    verdicts: tuple[str, ...]
    cause: str

_RECIPES: dict[str, tuple[str, str, dict]] = {
    "A": ("exploding", "ReLU with He initialization, every weight quadrupled: each layer amplifies the gradient",
          dict(depth=8, activation="relu", init="he", weight_scale=4.0)),
    "B": ("healthy", "tanh with Glorot/Xavier initialization at a moderate depth",
          dict(depth=6, activation="tanh", init="xavier")),
    "C": ("vanishing", "12 sigmoid layers at PyTorch's default initialization",
          dict(depth=12, activation="sigmoid")),
    "D": ("dead", "ReLU whose hidden biases were set to -10: no unit ever activates",
          dict(depth=8, activation="relu", init="he")),
}
MYSTERIES = tuple(_RECIPES)
"""The letters of the mystery models."""


def _check(letter: object) -> str:
    if letter not in _RECIPES:
        raise ValueError(f"unknown mystery model {letter!r}; choose one of {list(MYSTERIES)}")
    return letter


def mystery_model(letter: str, seed: int = 0) -> DeepMLP:
    """Mystery model ``letter`` (64 inputs, 10 classes, width 64), untrained."""
    _, _, options = _RECIPES[_check(letter)]
    model = deep_mlp(64, 10, width=64, seed=seed, **options)
    if letter == "D":
        with torch.no_grad():
            for layer in list(model)[:-1]:
                layer.linear.bias.fill_(-10.0)
    return model


def reveal(letter: str) -> Answer:
    """The answer for mystery model ``letter``."""
    problem, cause, _ = _RECIPES[_check(letter)]
    verdicts = (problem, "nonfinite") if problem == "exploding" else (problem,)
    return Answer(problem, verdicts, cause)
