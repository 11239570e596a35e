"""Matplotlib figures for the course. Every function takes data and returns its Figure.

No function here trains anything or calls ``plt.show()``; in a notebook the returned Figure
displays itself.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from vgcourse.activations import SATURATION_MARGIN, activate, derivative, derivative_bound, get_activation


def _check_series(series: Mapping[str, Sequence[float]], what: str) -> None:
    if not isinstance(series, Mapping) or not series:
        raise ValueError(f"{what} must be a non-empty mapping of label -> values")
    for label, values in series.items():
        if len(values) == 0:
            raise ValueError(f"{what}[{label!r}] is empty")


def activation_figure(names: Sequence[str] = ("sigmoid", "tanh"), x_max: float = 6.0) -> Figure:
    """Each activation (left) and its derivative with its supremum dashed (right), on [-x_max, x_max]."""
    for name in names:
        get_activation(name)
    if not x_max > 0:
        raise ValueError(f"x_max must be positive, got {x_max!r}")
    x = torch.linspace(-x_max, x_max, 601, dtype=torch.float64)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        (line,) = left.plot(x, activate(name, x), label=name)
        right.plot(x, derivative(name, x), color=line.get_color(), label=f"{name}'")
        right.axhline(derivative_bound(name), color=line.get_color(), linestyle="--", linewidth=0.8)
    left.set(title="activation f(x)", xlabel="x")
    right.set(title="derivative f'(x); dashed: its supremum", xlabel="x")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def layer_values_figure(
    values: Mapping[str, Sequence[float]],
    ylabel: str = "gradient norm ‖∂L/∂W‖",
    title: str = "",
    log: bool = True,
) -> Figure:
    """One line per entry of ``values`` against layer number 1..L (log scale by default)."""
    _check_series(values, "values")
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, series in values.items():
        ax.plot(np.arange(1, len(series) + 1), np.asarray(series, dtype=float), marker="o", markersize=3, label=label)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="layer (1 = next to the input)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def curves_figure(
    x: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    log: bool = False,
) -> Figure:
    """One line per entry of ``curves`` against the shared ``x`` values."""
    _check_series(curves, "curves")
    for label, values in curves.items():
        if len(values) != len(x):
            raise ValueError(f"curves[{label!r}] has {len(values)} values but x has {len(x)}")
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in curves.items():
        ax.plot(x, np.asarray(values, dtype=float), marker="o", label=label)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def activation_histogram_figure(
    outputs: Mapping[str, torch.Tensor], activation: str, margin: float = SATURATION_MARGIN, bins: int = 50
) -> Figure:
    """Histograms of activation values, one panel per entry, with the saturated bands shaded."""
    _check_series(outputs, "outputs")
    low, high = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(activation, (None, None))
    if low is None:
        raise ValueError(f"activation must be 'sigmoid' or 'tanh' (the ones that saturate), got {activation!r}")
    fig, axes = plt.subplots(1, len(outputs), figsize=(4 * len(outputs), 3.2), squeeze=False)
    for ax, (label, values) in zip(axes[0], outputs.items()):
        ax.hist(values.detach().flatten().cpu().numpy(), bins=bins, range=(low, high), color="tab:blue")
        ax.axvspan(low, low + margin, color="tab:red", alpha=0.2)
        ax.axvspan(high - margin, high, color="tab:red", alpha=0.2, label="saturated")
        ax.set(title=label, xlabel=f"{activation} output")
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig
