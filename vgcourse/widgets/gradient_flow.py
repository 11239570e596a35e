"""Gradient-flow explorer (notebook 02): per-layer gradient norms of a fresh deep MLP.

Choose depth, activation, initialization, batch norm and residual connections; see each
layer's weight-gradient norm at initialization and the ratio between the first and the last.
It is notebook 02's measurement: one forward and backward pass of a width-64 ``deep_mlp`` on
the first 256 training images of ``digits(seed=0)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from vgcourse.activations import ACTIVATIONS, get_activation
from vgcourse.data import digits
from vgcourse.models import INITS, deep_mlp
from vgcourse.plots import layer_values_figure
from vgcourse.probes.layers import fitted_decay_factor, layer_gradient_norms
from vgcourse.validation import check_int, is_int
from vgcourse.widgets.explorer import Explorer

WIDTH = 64
BATCH = 256
CLASSES = 10  # the digits
DEPTH_RANGE = (2, 50)
"""The explorer's depth slider spans this range."""


@functools.lru_cache(maxsize=1)
def _batch() -> tuple[Tensor, Tensor]:
    data = digits(seed=0)
    return data.x_train[:BATCH], data.y_train[:BATCH]


@dataclass(frozen=True)
class FlowSetting:
    """One setting of the explorer: a fresh width-64 ``deep_mlp`` with these knobs.

    Checked on construction, so every ``FlowSetting`` is valid, and frozen, so it is hashable
    and keys the cache of measured norms directly.
    """

    depth: int = 20
    activation: str = "sigmoid"
    init: str = "default"
    batch_norm: bool = False
    residual: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not is_int(self.depth) or self.depth < 2:
            raise ValueError(f"depth must be an integer >= 2 (a first and a last layer to compare), got {self.depth!r}")
        get_activation(self.activation)
        if not isinstance(self.init, str) or self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {list(INITS)}")
        for what in ("batch_norm", "residual"):
            if not isinstance(getattr(self, what), bool):
                raise ValueError(f"{what} must be True or False, got {getattr(self, what)!r}")
        check_int(self.seed, "seed", minimum=0)

    @property
    def label(self) -> str:
        """A short description, e.g. ``"relu, he init, residual"`` (depth and seed left out)."""
        return setting_label(self.activation, self.init, self.batch_norm, self.residual)


@functools.lru_cache(maxsize=256)
def _norms(setting: FlowSetting) -> tuple[float, ...]:
    x, y = _batch()
    model = deep_mlp(x.shape[1], CLASSES, depth=setting.depth, width=WIDTH, activation=setting.activation,
                     init=setting.init, batch_norm=setting.batch_norm, residual=setting.residual, seed=setting.seed)
    return tuple(layer_gradient_norms(model, x, y))


def gradient_flow_norms(
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    batch_norm: bool = False,
    residual: bool = False,
    seed: int = 0,
) -> list[float]:
    """The norm of ``∂L/∂W`` for layers 1..depth of a fresh network, at initialization.

    Args:
        depth: weight layers (>= 2).
        activation: one of ``vgcourse.activations.ACTIVATIONS``.
        init: one of ``vgcourse.models.INITS``.
        batch_norm, residual: as in :func:`vgcourse.models.deep_mlp`.
        seed: the weights' seed.

    Returns:
        one norm per layer, layer 1 (next to the input) first. Results are cached, so going
        back to a setting is instant.
    """
    return list(_norms(FlowSetting(depth, activation, init, batch_norm, residual, seed)))


def setting_label(activation: str, init: str, batch_norm: bool, residual: bool) -> str:
    """A short description of a setting, e.g. ``"relu, he init, residual"``."""
    parts = [activation, f"{init} init"] + ["batch norm"] * batch_norm + ["residual"] * residual
    return ", ".join(parts)


def _title(depth: int) -> str:
    return f"weight-gradient norm per layer at initialization (depth {depth})"


def gradient_norms_figure(
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    batch_norm: bool = False,
    residual: bool = False,
    seed: int = 0,
) -> Figure:
    """:func:`gradient_flow_norms` against the layer number, on a log scale."""
    setting = FlowSetting(depth, activation, init, batch_norm, residual, seed)
    return layer_values_figure({setting.label: list(_norms(setting))}, title=_title(depth))


def show_gradient_norms(
    figure: Figure,
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    batch_norm: bool = False,
    residual: bool = False,
    seed: int = 0,
) -> list[float]:
    """Redraw a :func:`gradient_norms_figure` in place for another setting; return its norms.

    The explorer's fast path: no new figure and no new layout, only new data and axis limits.
    """
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    if len(figure.axes) != 1 or len(figure.axes[0].lines) != 1:
        raise ValueError("figure must be one made by gradient_norms_figure (one axes, one line)")
    setting = FlowSetting(depth, activation, init, batch_norm, residual, seed)
    norms = list(_norms(setting))
    (ax,) = figure.axes
    (line,) = ax.lines
    line.set_data(np.arange(1, depth + 1), np.asarray(norms))
    line.set_label(setting.label)
    ax.set_title(_title(depth))
    ax.relim()
    ax.autoscale_view()
    ax.legend()
    return norms


def gradient_flow_readout(norms: list[float]) -> str:
    """HTML with the layer-1 / last-hidden-layer gradient norm ratio (and layer 1 / the output
    layer's), and, when every hidden layer's
    norm is positive, the factor per layer fitted from layer L-1 back to layer 2 (as in
    notebook 02: layer 1 sees the raw pixels and layer L has no activation)."""
    if len(norms) < 2:
        raise ValueError(f"need the norms of at least two layers, got {len(norms)}")
    depth = len(norms)

    def ratio(first: float, last: float, layer: int) -> str:
        if last == 0 or not math.isfinite(first / last):
            return f"undefined (layer 1: {first:.1e}, layer {layer}: {last:.1e})"
        if first == 0:
            return "0 — layer 1's gradient underflowed to exactly zero"
        return f"{first / last:.1e}"

    # The output layer has no activation and its norm often stands apart from the hidden layers'
    # (a spike), so the headline compares layer 1 with the last *hidden* layer.
    if depth >= 3:
        text = (f"<b>layer 1 / layer {depth - 1} (last hidden) gradient norm = {ratio(norms[0], norms[-2], depth - 1)}</b>"
                f"; layer 1 / layer {depth} (output) = {ratio(norms[0], norms[-1], depth)}")
    else:
        text = f"<b>layer 1 / layer {depth} gradient norm = {ratio(norms[0], norms[-1], depth)}</b>"
    hidden = norms[1:-1][::-1]  # from layer L-1 back to layer 2, as notebook 02 fits it
    if len(hidden) >= 2 and all(0 < n < math.inf for n in hidden):
        factor = fitted_decay_factor(hidden)
        text += f"; fitted factor per layer, from layer {depth - 1} back to layer 2: ×{factor:.3f}"
    return text


def gradient_flow_explorer(
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    batch_norm: bool = False,
    residual: bool = False,
) -> Explorer:
    """Controls ``"depth"``, ``"activation"``, ``"init"``, ``"batch_norm"`` and ``"residual"``,
    the first/last ratio, and :func:`gradient_norms_figure`. CSS class
    ``vgcourse-gradient-flow-explorer``."""
    FlowSetting(depth, activation, init, batch_norm, residual)  # checks the arguments
    if not DEPTH_RANGE[0] <= depth <= DEPTH_RANGE[1]:
        raise ValueError(f"depth must lie in {list(DEPTH_RANGE)} for the explorer, got {depth!r}")
    controls = {
        # Redraw on release: a backlog of redraws while dragging would make the slider lag.
        "depth": widgets.IntSlider(value=depth, min=DEPTH_RANGE[0], max=DEPTH_RANGE[1], description="depth",
                                   continuous_update=False),
        "activation": widgets.Dropdown(value=activation, options=list(ACTIVATIONS), description="activation"),
        "init": widgets.Dropdown(value=init, options=list(INITS), description="init"),
        "batch_norm": widgets.Checkbox(value=batch_norm, description="batch norm", indent=False),
        "residual": widgets.Checkbox(value=residual, description="residual", indent=False),
    }

    figure = gradient_norms_figure(depth, activation, init, batch_norm, residual)

    def draw(**setting: object) -> tuple[tuple[Figure], str]:
        norms = show_gradient_norms(figure, **setting)
        return (figure,), gradient_flow_readout(norms)

    return Explorer(controls, draw, "vgcourse-gradient-flow-explorer")
