"""Fix explorer (notebook 10): overlay the learning curves and gradient flow of trained runs.

Nothing trains here. The runs come in already trained (``vgcourse.experiments.run``); the
figures are drawn once with every run, and ticking a box only shows or hides its lines, so each
run keeps one colour whichever others are shown.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vgcourse.experiments import Run
from vgcourse.plots import layer_values_figure, learning_curves_figure
from vgcourse.widgets.explorer import Explorer


def _check_runs(runs: object) -> None:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping of label -> vgcourse.experiments.Run")
    for label, result in runs.items():
        if not isinstance(result, Run):
            raise TypeError(f"runs[{label!r}] must be a vgcourse.experiments.Run, got {type(result).__name__}")
        if result.monitor.steps == 0:
            raise ValueError(f"runs[{label!r}] recorded no training steps")


def _chosen(runs: Mapping[str, Run], selected: Sequence[str] | None) -> list[str]:
    _check_runs(runs)
    if selected is None:
        return list(runs)
    if isinstance(selected, str):
        raise TypeError(f"selected must be a sequence of labels, not the string {selected!r}; wrap it in a list")
    for label in selected:
        if label not in runs:
            raise ValueError(f"unknown run {label!r}; choose from {list(runs)}")
    return [label for label in runs if label in selected]  # in the runs' order, for stable colours


def _check_last(last: object) -> int:
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last must be a positive integer number of steps, got {last!r}")
    return last


def final_layer_norms(result: Run, last: int = 100) -> np.ndarray:
    """Each layer's gradient norm, as the median over the last ``last`` training steps."""
    return np.median(result.monitor.grad_norms()[-_check_last(last):], axis=0)


def final_layer_ratio(result: Run, last: int = 100) -> float:
    """The median over the last ``last`` steps of layer 1's gradient norm over the last layer's."""
    norms = result.monitor.grad_norms()[-_check_last(last):]
    return float(np.median(norms[:, 0] / norms[:, -1]))


def fix_comparison_figures(
    runs: Mapping[str, Run], selected: Sequence[str] | None = None, last: int = 100
) -> tuple[Figure, Figure]:
    """The learning curves and the per-layer gradient norms (:func:`final_layer_norms`) of the
    ``selected`` runs (default: all).

    Every run is drawn, in the colour of its position in ``runs``, and all but the selected are
    hidden (:func:`show_runs`), so a run keeps its colour whichever others are shown.
    """
    chosen = _chosen(runs, selected)
    curves = learning_curves_figure({label: result.history for label, result in runs.items()})
    flow = layer_values_figure(
        {label: final_layer_norms(result, last) for label, result in runs.items()},
        title=f"gradient norm per layer, median over the last {last} steps of training",
    )
    show_runs((curves, flow), chosen)
    return curves, flow


def show_runs(figures: Sequence[Figure], selected: Sequence[str]) -> None:
    """Show only the lines labelled ``selected`` in ``figures`` (from :func:`fix_comparison_figures`),
    in place, with the legends and axis limits following the lines shown."""
    if isinstance(selected, str) or not selected:
        raise ValueError(f"selected must be a non-empty sequence of run labels, got {selected!r}")
    for figure in figures:
        for ax in figure.axes:
            for line in ax.lines:
                line.set_visible(line.get_label() in selected)
            ax.relim(visible_only=True)
            ax.autoscale_view()
            ax.legend(handles=[line for line in ax.lines if line.get_visible()])


def fix_comparison_readout(runs: Mapping[str, Run], selected: Sequence[str] | None = None, last: int = 100) -> str:
    """An HTML table of the ``selected`` runs: final test accuracy and :func:`final_layer_ratio`."""
    chosen = _chosen(runs, selected)
    if not chosen:
        return "<i>Tick at least one set-up to compare.</i>"
    rows = "".join(
        f"<tr><td>{label}</td><td>{runs[label].history.test_accuracy[-1]:.1%}</td>"
        f"<td>{final_layer_ratio(runs[label], last):.1e}</td></tr>"
        for label in chosen
    )
    header = f"<tr><th>set-up</th><th>test accuracy</th><th>layer 1 / layer L gradient (last {last} steps)</th></tr>"
    return f"<table>{header}{rows}</table>"


def fix_explorer(runs: Mapping[str, Run], selected: Sequence[str] | None = None, last: int = 100) -> Explorer:
    """One checkbox per run (control name = the run's label, default: all ticked), a table of
    the ticked runs, and :func:`fix_comparison_figures`. CSS class ``vgcourse-fix-explorer``."""
    chosen = _chosen(runs, selected)
    _check_last(last)
    controls = {
        label: widgets.Checkbox(value=label in chosen, description=label, indent=False,
                                layout=widgets.Layout(width="auto"))
        for label in runs
    }

    figures = fix_comparison_figures(runs, chosen or None, last)

    def draw(**ticked: bool) -> tuple[tuple[Figure, ...], str]:
        shown = [label for label, on in ticked.items() if on]
        if shown:
            show_runs(figures, shown)
        return figures if shown else (), fix_comparison_readout(runs, shown, last)

    return Explorer(controls, draw, "vgcourse-fix-explorer")
