"""Derivative explorer (notebook 01): σ, tanh and their derivatives at a point x you move.

A unit computes ``f(z)`` of its pre-activation ``z = scale·x``; the ``scale`` stands for the
size of the weight in front of it. Backpropagation multiplies by the *derivative factor*
``f'(z)``, which is what the right-hand panel shows.
"""

from __future__ import annotations


import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from vgcourse.activations import activate, derivative, derivative_bound, saturated_mask
from vgcourse.validation import check_number
from vgcourse.widgets.explorer import Explorer

NAMES = ("sigmoid", "tanh")
SYMBOLS = {"sigmoid": "σ", "tanh": "tanh"}
COLORS = {"sigmoid": "tab:blue", "tanh": "tab:orange"}
X_MAX = 6.0
"""The explorer's x slider spans [-X_MAX, X_MAX]."""
SCALE_RANGE = (0.25, 4.0)
"""The explorer's scale slider spans this range."""


def _number(value: object, what: str) -> float:
    return check_number(value, what)


def _check(x: object, scale: object, x_max: object = None) -> tuple[float, float]:
    x, scale = _number(x, "x"), _number(scale, "scale")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if x_max is not None:
        x_max = _number(x_max, "x_max")
        if x_max <= 0:
            raise ValueError(f"x_max must be positive, got {x_max!r}")
        if abs(x) > x_max:
            raise ValueError(f"x must lie in [-{x_max:g}, {x_max:g}], got {x!r}")
    return x, scale


def derivative_figure(x: float = 2.0, scale: float = 1.0, x_max: float = X_MAX) -> Figure:
    """σ and tanh of ``z = scale·x`` (left) and their derivatives at z (right), for x in
    ``[-x_max, x_max]``.

    The point ``x`` is marked on every curve, the derivatives' maxima are dashed, and each
    curve is highlighted where its unit is saturated (``vgcourse.activations.saturated_mask``).
    Each line's ``gid`` names it: ``"sigmoid"``, ``"sigmoid at x"``, ``"sigmoid saturated"``,
    the same for ``"tanh"``, and ``"x"`` for the vertical line at x.
    """
    x, scale = _check(x, scale, x_max)
    grid = np.linspace(-float(x_max), float(x_max), 601)
    empty = np.full_like(grid, np.nan)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in NAMES:
        symbol, color = SYMBOLS[name], COLORS[name]
        for ax, label in ((left, f"{symbol}(z)"), (right, f"{symbol}'(z)")):
            ax.plot(grid, empty, color=color, label=label, gid=name)
            ax.plot(grid, empty, color=color, linewidth=8, alpha=0.25, solid_capstyle="butt",
                    label=f"{symbol} saturated", gid=f"{name} saturated")
            ax.plot([x], [np.nan], "o", color=color, markersize=7, gid=f"{name} at x")
        right.axhline(derivative_bound(name), color=color, linestyle="--", linewidth=0.8)
    for ax in (left, right):
        ax.axvline(x, color="gray", linewidth=0.8, gid="x")
        ax.grid(alpha=0.3)
    # Fixed limits: the curves are filled in (and later moved) by show_derivatives.
    left.set(xlabel="x", xlim=(grid[0], grid[-1]), ylim=(-1.08, 1.08))
    right.set(title="derivative factor f'(z); dashed: its maximum", xlabel="x", xlim=(grid[0], grid[-1]),
              ylim=(-0.04, 1.06))
    left.legend(fontsize="small", loc="upper left")
    right.legend(fontsize="small", loc="upper right")
    show_derivatives(fig, x, scale)
    fig.tight_layout()
    plt.close(fig)
    return fig


def show_derivatives(figure: Figure, x: float, scale: float) -> None:
    """Redraw a :func:`derivative_figure` in place for another ``x`` and ``scale``.

    The explorer's fast path: no new figure and no new layout, only new data.
    """
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    lines = {(panel, line.get_gid()): line for panel, ax in enumerate(figure.axes) for line in ax.lines}
    if (0, "sigmoid") not in lines:
        raise ValueError("figure must be one made by derivative_figure")
    grid = np.asarray(lines[0, "sigmoid"].get_xdata())
    x, scale = _check(x, scale, float(grid[-1]))
    for name in NAMES:
        z = torch.from_numpy(scale * grid)
        outputs = activate(name, z)
        saturated = saturated_mask(name, outputs).numpy()
        panels = ((0, outputs, activate(name, scale * x)), (1, derivative(name, z), derivative(name, scale * x)))
        for panel, values, now in panels:
            lines[panel, name].set_ydata(values.numpy())
            lines[panel, f"{name} saturated"].set_ydata(np.where(saturated, values.numpy(), np.nan))
            lines[panel, f"{name} at x"].set_data([x], [float(now)])
    for panel in (0, 1):
        lines[panel, "x"].set_xdata([x, x])
    figure.axes[0].set_title(f"activation f(z), z = {scale:.2f}·x")


def derivative_readout(x: float = 2.0, scale: float = 1.0) -> str:
    """HTML with ``z = scale·x`` and, for σ and tanh, ``f(z)``, ``f'(z)`` as a share of its
    maximum, and whether the unit is saturated there, e.g. ``"σ'(z) = 0.1050 (42.0% of its
    maximum 1/4)"``."""
    x, scale = _check(x, scale)
    z = scale * x
    lines = [f"<b>x = {x:.2f}</b>, scale = {scale:.2f} → pre-activation z = scale·x = {z:.2f}"]
    for name in NAMES:
        symbol, bound = SYMBOLS[name], derivative_bound(name)
        value, slope = activate(name, z), float(derivative(name, z))
        saturated = bool(saturated_mask(name, value))
        lines.append(
            f"{symbol}(z) = {float(value):.4f}, {symbol}'(z) = {slope:.4f} "
            f"({slope / bound:.1%} of its maximum {'1/4' if bound == 0.25 else f'{bound:g}'})"
            + (" — <b>saturated</b>" if saturated else "")
        )
    return "<br>".join(lines)


def derivative_explorer(x: float = 2.0, scale: float = 1.0) -> Explorer:
    """Sliders for x and the pre-activation scale, a readout of the values at x, and
    :func:`derivative_figure`. Controls: ``"x"`` and ``"scale"``; CSS class
    ``vgcourse-derivative-explorer``."""
    x, scale = _check(x, scale, X_MAX)
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        raise ValueError(f"scale must lie in {list(SCALE_RANGE)} for the explorer, got {scale!r}")
    # Redraw on release, not while dragging: each redraw renders a PNG, and a backlog of
    # redraws would make the slider lag behind the hand.
    controls = {
        "x": widgets.FloatSlider(value=x, min=-X_MAX, max=X_MAX, step=0.05, description="x",
                                 continuous_update=False, readout_format=".2f"),
        "scale": widgets.FloatSlider(value=scale, min=SCALE_RANGE[0], max=SCALE_RANGE[1], step=0.05,
                                     description="scale", continuous_update=False, readout_format=".2f"),
    }

    figure = derivative_figure(x, scale)

    def draw(x: float, scale: float) -> tuple[tuple[Figure], str]:
        show_derivatives(figure, x, scale)
        return (figure,), derivative_readout(x, scale)

    return Explorer(controls, draw, "vgcourse-derivative-explorer")
