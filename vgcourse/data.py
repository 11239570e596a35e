"""Offline data sets: real 8x8 digits shipped in this package, two spirals, the adding problem.

Nothing here downloads anything. Every function takes an explicit ``seed`` and returns the same
tensors for the same seed.
"""

from __future__ import annotations

import functools
import gzip
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from vgcourse.validation import check_int, check_number


@dataclass(frozen=True)
class Split:
    """A train/test split. Classification targets are ``int64`` class indices; regression
    targets are ``float32`` of shape ``(n, 1)``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def n_features(self) -> int:
        """Size of one input (the last dimension of ``x_train``)."""
        return self.x_train.shape[-1]

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or ``None`` for a regression task."""
        if self.y_train.dtype != torch.int64:
            return None
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _split(x: Tensor, y: Tensor, test_fraction: float, generator: torch.Generator) -> Split:
    order = torch.randperm(len(x), generator=generator)
    n_test = max(1, round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


DIGITS_FILE = "digits.csv.gz"
"""The UCI optical-recognition digits (Alpaydin & Kaynak, 1998; CC BY 4.0) as scikit-learn ships
them in ``sklearn/datasets/data/``: one row per image, 64 pixel values (0–16) then the label.
A copy lives in this package because importing scikit-learn costs every notebook kernel about
1.4 s; ``tests/test_data.py`` checks that it equals ``sklearn.datasets.load_digits()``."""


@functools.cache
def _digit_table() -> np.ndarray:
    with resources.files("vgcourse").joinpath(DIGITS_FILE).open("rb") as packed:
        return np.loadtxt(gzip.open(packed), delimiter=",", dtype=np.float64)


def digits(test_fraction: float = 0.25, seed: int = 0) -> Split:
    """The 1,797 handwritten 8x8 digits also bundled with scikit-learn (10 classes, 64 features).

    Pixels are standardized with the *training* set's mean and standard deviation, so no
    information leaks from the test set.
    """
    check_number(test_fraction, "test_fraction", 0, 1)
    check_int(seed, "seed", minimum=0)
    table = _digit_table()
    x = torch.tensor(table[:, :-1], dtype=torch.float32)
    y = torch.tensor(table[:, -1], dtype=torch.int64)
    split = _split(x, y, test_fraction, torch.Generator().manual_seed(seed))
    mean = split.x_train.mean(0)
    std = split.x_train.std(0).clamp_min(1e-3)  # some border pixels are always 0
    return Split(
        (split.x_train - mean) / std, split.y_train, (split.x_test - mean) / std, split.y_test
    )


def spirals(n: int = 1000, noise: float = 0.05, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """Two interleaved 2-D spirals, ``n`` points in all, labelled 0 and 1.

    Not linearly separable, so a network has to use its depth; small enough to train in seconds.
    """
    check_int(n, "n", minimum=4)
    check_number(noise, "noise", 0, include_low=True)
    check_number(test_fraction, "test_fraction", 0, 1)
    check_int(seed, "seed", minimum=0)
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    radius = torch.rand(n, generator=gen) * 0.9 + 0.1
    angle = 3 * math.pi * radius + math.pi * y
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    x = x + noise * torch.randn(n, 2, generator=gen)
    return _split(x / x.std(0), y.to(torch.int64), test_fraction, gen)


ADDING_BASELINE_MSE = 1 / 6
"""Test MSE of always predicting the mean target 1: the variance of a sum of two U(0, 1)."""


def adding_problem(length: int, n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Split:
    """The adding problem of Hochreiter & Schmidhuber (1997).

    Each input is a sequence of ``length`` steps with two channels: a value drawn from U(0, 1)
    and a marker that is 1 at exactly two steps (one in the first half, one in the second half)
    and 0 elsewhere. The target is the sum of the two marked values. A model that ignores the
    input and predicts the mean (1) has test MSE ``ADDING_BASELINE_MSE`` = 1/6.

    Returns:
        a :class:`Split` with ``x`` of shape ``(n, length, 2)`` and ``y`` of shape ``(n, 1)``.
    """
    check_int(length, "length", minimum=2)
    check_int(n_train, "n_train", minimum=1)
    check_int(n_test, "n_test", minimum=1)
    check_int(seed, "seed", minimum=0)
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    values = torch.rand(n, length, generator=gen)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=gen)
    second = torch.randint(half, length, (n,), generator=gen)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=2)
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])
