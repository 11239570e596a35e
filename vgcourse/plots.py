"""Matplotlib figures for the course. Every function takes data and returns its Figure.

No function here trains anything or calls ``plt.show()``; in a notebook the returned Figure
displays itself.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vgcourse.activations import OUTPUT_RANGES, SATURATION_MARGIN, activate, derivative, derivative_bound, get_activation
from vgcourse.monitor import GradientMonitor
from vgcourse.records import HISTOGRAM_KINDS, Histogram, MonitorRecords, RecordQueries
from vgcourse.validation import check_choice, check_int
from vgcourse.training import History


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
    lines = {label: (np.arange(1, len(series) + 1), series) for label, series in values.items()}
    fig = _lines_figure(lines, "layer (1 = next to the input)", ylabel, title, log, markersize=3)
    fig.axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # layers are whole numbers
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
    return _lines_figure({label: (x, values) for label, values in curves.items()}, xlabel, ylabel, title, log)


def _lines_figure(
    lines: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    log: bool,
    markersize: float | None = None,
    xlog: bool = False,
) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (x, y) in lines.items():
        ax.plot(x, np.asarray(y, dtype=float), marker="o", markersize=markersize, label=label)
    if log:
        ax.set_yscale("log")
    if xlog:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def lr_sweep_figure(curves: Mapping[str, Mapping[float, float]], ylabel: str, title: str = "") -> Figure:
    """One line per set-up of a value (e.g. the median test accuracy) against the learning rate,
    on a log lr axis: ``curves[name][lr] = value``."""
    _check_series(curves, "curves")
    for label, values in curves.items():
        if not isinstance(values, Mapping) or not values:
            raise ValueError(f"curves[{label!r}] must map learning rates to values, got {values!r}")
        if any(not (isinstance(lr, (int, float)) and lr > 0) for lr in values):
            raise ValueError(f"curves[{label!r}] has a learning rate that is not a positive number: {list(values)}")
    lines = {label: (sorted(values), [values[lr] for lr in sorted(values)]) for label, values in curves.items()}
    return _lines_figure(lines, "learning rate (log scale)", ylabel, title, log=False, xlog=True)


def activation_histogram_figure(
    outputs: Mapping[str, torch.Tensor], activation: str, margin: float = SATURATION_MARGIN, bins: int = 50
) -> Figure:
    """Histograms of activation values, one panel per entry, with the saturated bands shaded."""
    _check_series(outputs, "outputs")
    if activation not in OUTPUT_RANGES:
        raise ValueError(f"activation must be 'sigmoid' or 'tanh' (the ones that saturate), got {activation!r}")
    low, high = OUTPUT_RANGES[activation]
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


# --- Figures of a GradientMonitor's records and of training histories -------------------------


def _check_monitor(monitor: GradientMonitor | MonitorRecords) -> None:
    if not isinstance(monitor, RecordQueries):
        raise TypeError(f"monitor must be a vgcourse.monitor.GradientMonitor or its records(), got "
                        f"{type(monitor).__name__}")
    if monitor.steps == 0:
        raise ValueError("the monitor has recorded no steps yet; train the model inside `with GradientMonitor(model)`")


MAX_LEGEND_LAYERS = 10
"""With more layers than this, a figure tells layers apart by a colour bar instead of a legend."""


def _layer_key(fig: Figure, ax, names: Sequence[str]) -> None:
    """Name the per-layer lines of ``ax`` (coloured by :func:`_layer_colors`): a legend outside
    the axes for a few layers, a colour bar numbered by layer for many."""
    if len(names) <= MAX_LEGEND_LAYERS:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize="small")
        return
    mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(1, len(names)))
    bar = fig.colorbar(mappable, ax=ax, pad=0.02)
    bar.set_label(f"layer ({names[0]} … {names[-1]})")
    bar.ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))


def _layer_colors(names: Sequence[str]) -> np.ndarray:
    return plt.get_cmap("viridis")(np.linspace(0, 1, len(names)))


def _spread(names: Sequence[str], most: int) -> list[int]:
    """Indices of at most ``most`` evenly spaced entries, always the first and the last."""
    if len(names) <= most:
        return list(range(len(names)))
    return sorted({round(i * (len(names) - 1) / (most - 1)) for i in range(most)})


def gradient_flow_figure(monitor: GradientMonitor | MonitorRecords, steps: Sequence[int] | None = None) -> Figure:
    """Left: each layer's gradient norm at a few steps. Right: every layer's norm over training.

    Both on log scales. ``steps`` defaults to the first, middle and last recorded step.
    """
    _check_monitor(monitor)
    norms, names = monitor.grad_norms(), monitor.layer_names
    if steps is None:
        steps = sorted({0, monitor.steps // 2, monitor.steps - 1})
    for step in steps:
        if not -monitor.steps <= step < monitor.steps:
            raise ValueError(f"step {step} is out of range; the monitor recorded {monitor.steps} steps")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    layers = np.arange(1, len(names) + 1)
    numbers = monitor.step_numbers()  # the optimizer step of each recorded row
    for step in steps:
        left.plot(layers, norms[step], marker="o", markersize=3, label=f"step {numbers[step]}")
    left.set(yscale="log", xlabel="layer (1 = next to the input)", ylabel="gradient norm ‖∂L/∂W‖",
             title="gradient norm per layer")
    left.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    for index, (name, color) in enumerate(zip(names, _layer_colors(names))):
        right.plot(numbers, norms[:, index], color=color, linewidth=1, label=name)
    right.set(yscale="log", xlabel="training step", ylabel="gradient norm", title="gradient flow during training")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
    left.legend(fontsize="small")
    _layer_key(fig, right, names)
    plt.close(fig)
    return fig


def histograms_figure(monitor: GradientMonitor | MonitorRecords, kind: str = "grad", max_layers: int = 6) -> Figure:
    """One row per layer (at most ``max_layers``, first and last always shown), each overlaying
    the histograms recorded over training, early steps dark and late steps light.

    All rows share one x-axis, as in Glorot & Bengio (2010): a layer whose gradients vanish
    shows as a spike at zero. Activation rows of sigmoid/tanh layers shade the saturated bands.
    """
    _check_monitor(monitor)
    records = monitor.histograms(kind)
    if not records:
        raise ValueError(f"the monitor recorded no {kind} histograms (histograms=False, or no activations ran)")
    names = [name for name in monitor.layer_names if any(r.layer == name for r in records)]
    shown = [names[i] for i in _spread(names, max_layers)]
    steps = sorted({r.step for r in records})
    colors = dict(zip(steps, plt.get_cmap("viridis")(np.linspace(0, 0.9, len(steps)))))
    saturating = dict(zip(monitor.layer_names, ~np.isnan(monitor.saturated_fractions()).all(axis=0)))
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.6 * len(shown) + 1.0), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[:, 0], shown):
        for record in (r for r in records if r.layer == name):
            ax.stairs(record.counts, record.edges, color=colors[record.step], label=f"step {record.step}")
        if kind == "activation" and saturating.get(name, False):
            low = min(r.edges[0] for r in records if r.layer == name)  # 0 (sigmoid) or -1 (tanh)
            ax.axvspan(low, low + monitor.saturation_margin, color="tab:red", alpha=0.2)
            ax.axvspan(1 - monitor.saturation_margin, 1, color="tab:red", alpha=0.2)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_yticks([])
    # One legend for all rows, below them: inside a row it would cover that layer's spike.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize="small", ncol=min(len(steps), 7))
    fig.suptitle(f"{'gradient' if kind == 'grad' else 'activation'} histograms per layer over training")
    axes[-1, 0].set_xlabel("weight gradient" if kind == "grad" else "activation output")
    plt.close(fig)
    return fig


SMALLEST_SHARE = 1e-4
"""The darkest colour of :func:`histogram_images_figure`: bins holding this share of a step's values or less."""


def _rebinned(record: Histogram, edges: np.ndarray) -> np.ndarray:
    """``record``'s counts moved onto ``edges``, each bin's count spread evenly over its width."""
    cumulative = np.concatenate([[0.0], np.cumsum(record.counts, dtype=float)])
    return np.diff(np.interp(edges, record.edges, cumulative))


def histogram_images_figure(monitor: GradientMonitor | MonitorRecords, kind: str = "activation",
                            max_layers: int = 6) -> Figure:
    """fastai's "colorful dimension": one image per layer (at most ``max_layers``, first and last
    always shown), training steps left to right, the layer's histogram at each recorded step
    bottom to top, brightness the share of that step's values in each bin (log scale).

    Each layer's histograms are moved onto one shared range (the widest recorded), so a
    distribution that narrows over training shows as a band that thins, and units pinned at a
    sigmoid's asymptotes show as bright rows at the edges.
    """
    _check_monitor(monitor)
    check_choice(kind, "kind", HISTOGRAM_KINDS)
    check_int(max_layers, "max_layers", minimum=2)
    records = monitor.histograms(kind)
    if not records:
        raise ValueError(f"the monitor recorded no {kind} histograms (histograms=False, or no activations ran)")
    names = [name for name in monitor.layer_names if any(r.layer == name for r in records)]
    shown = [names[i] for i in _spread(names, max_layers)]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.3 * len(shown) + 1.0), sharex=True, squeeze=False,
                             layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad=plt.get_cmap("viridis")(0.0))  # an empty bin is darkest
    for ax, name in zip(axes[:, 0], shown):
        rows = sorted((r for r in records if r.layer == name), key=lambda r: r.step)
        edges = np.linspace(min(r.edges[0] for r in rows), max(r.edges[-1] for r in rows), len(rows[0].counts) + 1)
        steps = np.array([r.step for r in rows], dtype=float)
        spacing = np.diff(steps).min() if len(steps) > 1 else 1.0
        columns = np.append(steps, steps[-1] + spacing)  # each step's column runs to the next step
        counts = np.stack([_rebinned(r, edges) for r in rows], axis=1)  # (bins, steps)
        share = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)  # batches of any size look alike
        ax.pcolormesh(columns, edges, share, cmap=cmap, norm=LogNorm(SMALLEST_SHARE, 1, clip=True), shading="flat")
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("training step")
    what = "gradient" if kind == "grad" else "activation"
    fig.colorbar(plt.cm.ScalarMappable(LogNorm(SMALLEST_SHARE, 1), cmap), ax=axes[:, 0], label="share of the values")
    fig.suptitle(f"{what} histograms over training, one image per layer")
    plt.close(fig)
    return fig


def update_ratio_figure(monitor: GradientMonitor | MonitorRecords, reference: float = 1e-3) -> Figure:
    """``‖Δw‖/‖w‖`` at each measured step for every layer (log scale), with a dashed reference level.

    A common rule of thumb puts healthy updates near 1e-3 of the weights; layers far below it
    are effectively frozen.
    """
    _check_monitor(monitor)
    ratios, names = monitor.update_ratios(), monitor.layer_names
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for index, (name, color) in enumerate(zip(names, _layer_colors(names))):
        measured = np.flatnonzero(np.isfinite(ratios[:, index]))  # every ratio_every-th step
        ax.plot(monitor.step_numbers()[measured], ratios[measured, index], color=color, linewidth=1, label=name)
    ax.axhline(reference, color="black", linestyle="--", linewidth=1)
    ax.set(yscale="log", xlabel="training step", ylabel="‖Δw‖ / ‖w‖", title="update-to-weight ratio")
    ax.grid(alpha=0.3, which="both")
    _layer_key(fig, ax, names)
    plt.close(fig)
    return fig


def learning_curves_figure(histories: Mapping[str, History]) -> Figure:
    """Test loss (left) and, for classification, test accuracy (right) per epoch for each run."""
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories must be a non-empty mapping of label -> History")
    for label, history in histories.items():
        if not isinstance(history, History):
            raise TypeError(f"histories[{label!r}] must be a vgcourse.training.History, got {type(history).__name__}")
    with_accuracy = all(h.test_accuracy for h in histories.values())
    fig, axes = plt.subplots(1, 2 if with_accuracy else 1, figsize=(11 if with_accuracy else 6, 4.2),
                             squeeze=False, layout="constrained")
    for label, history in histories.items():
        epochs = np.arange(len(history.test_loss))
        axes[0, 0].plot(epochs, history.test_loss, marker="o", markersize=3, label=label)
        if with_accuracy:
            axes[0, 1].plot(epochs, history.test_accuracy, marker="o", markersize=3, label=label)
    set_loss_axis(axes[0, 0], [h.test_loss for h in histories.values()])
    axes[0, 0].set(xlabel="epoch (0 = before training)", ylabel="test loss", title="learning curves")
    if with_accuracy:
        axes[0, 1].set(xlabel="epoch (0 = before training)", ylabel="test accuracy", ylim=(0, 1))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
    legend_below(fig, axes[0, 0].lines)
    plt.close(fig)
    return fig


LOSS_AXIS = "loss axis"
"""The ``gid`` of an axes whose y-limits :func:`set_loss_axis` keeps (so ``show_runs`` can refit it)."""
CLIPPED_NOTE = "clipped note"
"""The ``gid`` of the "values above … clipped" text on a loss axis."""


def set_loss_axis(ax: Axes, losses: Sequence[Sequence[float]], headroom: float = 1.15, spike: float = 2.0) -> None:
    """Fit a loss axis to the curves ``losses``: from 0, so a stalled loss looks stalled, up to
    ``headroom`` × the highest value, leaving out values more than ``spike`` times the highest
    starting loss (one run's blow-up), so that spike does not flatten the others; values above the
    top are said to be clipped. Calling it again refits the axis and the note."""
    starts = [float(curve[0]) for curve in losses if len(curve) and np.isfinite(curve[0])]
    values = [float(v) for curve in losses for v in curve if np.isfinite(v)]
    top = 1.0
    if values:
        limit = spike * max(starts) if starts else max(values)
        top = headroom * max(v for v in values + [min(values)] if v <= limit)
    ax.set_gid(LOSS_AXIS)
    ax.set_ylim(0, top)
    for text in [t for t in ax.texts if t.get_gid() == CLIPPED_NOTE]:
        text.remove()
    if any(v > top for v in values):
        ax.text(0.99, 0.98, f"values above {top:.3g} clipped", transform=ax.transAxes, ha="right", va="top",
                fontsize="small", color="dimgray", gid=CLIPPED_NOTE)


def legend_below(fig: Figure, lines: Sequence[Line2D]) -> None:
    """One legend of ``lines`` for the whole figure, below its axes and off the data (a figure
    with ``layout="constrained"`` makes room for it); it replaces any earlier figure legend."""
    for legend in list(fig.legends):
        legend.remove()
    labels = [line.get_label() for line in lines]
    fig.legend(lines, labels, loc="outside lower center", ncol=max(1, min(len(labels), 4)))