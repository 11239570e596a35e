"""Fix explorer (notebook 10): overlay the learning curves and gradient flow of trained runs.

Nothing trains here. The runs come in already trained: a ``vgcourse.experiments.Run`` (one run
watched by a ``GradientMonitor``) or a ``vgcourse.seeds.SeedRun`` (one seed of ``run_seeds``).
All the explorer reads of a run is its ``history`` and its per-step gradient norms; both kinds
are seen through :func:`as_seed_run`, so one definition of every number serves both. The
figures are drawn once with every run, and ticking a box only shows or hides its lines, so each
run keeps one colour whichever others are shown.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vgcourse.diagnosis import first_last_ratio
from vgcourse.experiments import Run
from vgcourse.seeds import SeedRun
from vgcourse.plots import LOSS_AXIS, layer_values_figure, learning_curves_figure, legend_below, set_loss_axis
from vgcourse.validation import check_int
from vgcourse.widgets.explorer import Explorer


def as_seed_run(result: Run | SeedRun) -> SeedRun:
    """``result`` as a :class:`~vgcourse.seeds.SeedRun`: itself, or for a monitored
    ``experiments.Run`` a ``SeedRun`` with the same setup, model, history and the monitor's
    gradient norms, so ``grad_norms()`` and every number read from it mean the same for both."""
    if isinstance(result, SeedRun):
        return result
    if isinstance(result, Run):
        return SeedRun(result.setup, result.model, result.history, result.monitor.grad_norms(),
                       np.zeros(0), result.monitor.layer_names)
    raise TypeError(f"expected a vgcourse.experiments.Run or vgcourse.seeds.SeedRun, got {type(result).__name__}")


def _check_runs(runs: object) -> dict[str, SeedRun]:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping of label -> vgcourse.experiments.Run or vgcourse.seeds.SeedRun")
    views = {}
    for label, result in runs.items():
        if not isinstance(result, (Run, SeedRun)):
            raise TypeError(f"runs[{label!r}] must be a vgcourse.experiments.Run or vgcourse.seeds.SeedRun, "
                            f"got {type(result).__name__}")
        views[label] = as_seed_run(result)
        if len(views[label].grad_norms()) == 0 and not views[label].diverged:  # diverged at step 0: data
            raise ValueError(f"runs[{label!r}] recorded no training steps")
    return views


def _chosen(runs: Mapping[str, Run | SeedRun], selected: Sequence[str] | None) -> list[str]:
    if selected is None:
        return list(runs)
    if isinstance(selected, str):
        raise TypeError(f"selected must be a sequence of labels, not the string {selected!r}; wrap it in a list")
    for label in selected:
        if label not in runs:
            raise ValueError(f"unknown run {label!r}; choose from {list(runs)}")
    return [label for label in runs if label in selected]  # in the runs' order, for stable colours


def _check_last(last: object) -> int:
    return check_int(last, "last", minimum=1)


def final_layer_norms(result: Run | SeedRun, last: int = 100) -> np.ndarray:
    """Each layer's gradient norm, as the median over the last ``last`` training steps (NaN for a
    run that diverged before its first step)."""
    norms = as_seed_run(result).grad_norms()[-_check_last(last):]
    return np.median(norms, axis=0) if len(norms) else np.full(norms.shape[1], np.nan)


def final_layer_ratio(result: Run | SeedRun, last: int = 100) -> float:
    """The median over the last ``last`` steps of layer 1's gradient norm over the last layer's:
    :func:`vgcourse.diagnosis.first_last_ratio` (``last=last``), for either kind of run."""
    return first_last_ratio(as_seed_run(result).grad_norms(), _check_last(last))


def fix_comparison_figures(
    runs: Mapping[str, Run | SeedRun], selected: Sequence[str] | None = None, last: int = 100
) -> tuple[Figure, Figure]:
    """The learning curves and the per-layer gradient norms (:func:`final_layer_norms`) of the
    ``selected`` runs (default: all).

    Every run is drawn, in the colour of its position in ``runs``, and all but the selected are
    hidden (:func:`show_runs`), so a run keeps its colour whichever others are shown.
    """
    views = _check_runs(runs)
    chosen = _chosen(views, selected)
    curves = learning_curves_figure({label: view.history for label, view in views.items()})
    flow = layer_values_figure(
        {label: final_layer_norms(view, last) for label, view in views.items()},
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
            shown = [line for line in ax.lines if line.get_visible()]
            if ax.get_gid() == LOSS_AXIS:  # from 0 to what the shown curves need, clipping said
                set_loss_axis(ax, [line.get_ydata() for line in shown])
            ax.relim(visible_only=True)
            ax.autoscale_view()  # axes with fixed limits (accuracy 0-1, the loss axis) keep them
            if ax.get_legend() is not None:
                ax.legend(handles=shown)
        if figure.legends:  # a figure-level legend, below the axes: the first axes' shown lines
            legend_below(figure, [line for line in figure.axes[0].lines if line.get_visible()])


def _accuracy_cell(view: SeedRun) -> str:
    if view.diverged:  # its last recorded accuracy is from before the blow-up: not a result
        return f"diverged at step {view.history.diverged_at}"
    return f"{view.history.test_accuracy[-1]:.1%}"


def fix_comparison_readout(runs: Mapping[str, Run | SeedRun], selected: Sequence[str] | None = None,
                           last: int = 100) -> str:
    """An HTML table of the ``selected`` runs: final test accuracy ("diverged at step N" for a
    run whose loss became NaN or infinite) and :func:`final_layer_ratio`."""
    views = _check_runs(runs)
    chosen = _chosen(views, selected)
    if not chosen:
        return "<i>Tick at least one set-up to compare.</i>"
    rows = "".join(
        f"<tr><td>{label}</td><td>{_accuracy_cell(views[label])}</td>"
        f"<td>{final_layer_ratio(views[label], last):.1e}</td></tr>"
        for label in chosen
    )
    header = f"<tr><th>set-up</th><th>test accuracy</th><th>layer 1 / layer L gradient (last {last} steps)</th></tr>"
    return f"<table>{header}{rows}</table>"


def fix_explorer(runs: Mapping[str, Run | SeedRun], selected: Sequence[str] | None = None, last: int = 100) -> Explorer:
    """One checkbox per run (control name = the run's label, default: all ticked), a table of
    the ticked runs, and :func:`fix_comparison_figures`. CSS class ``vgcourse-fix-explorer``.

    ``runs`` may mix ``experiments.Run`` and ``seeds.SeedRun`` values (e.g. seed 0 of each
    ``run_seeds`` result: ``{label: results[0] for label, results in ...}``)."""
    views = _check_runs(runs)  # converted once: ticking a box reads nothing from a monitor again
    chosen = _chosen(views, selected)
    _check_last(last)
    controls = {
        label: widgets.Checkbox(value=label in chosen, description=label, indent=False,
                                layout=widgets.Layout(width="auto"))
        for label in views
    }

    figures = fix_comparison_figures(views, chosen or None, last)

    def draw(**ticked: bool) -> tuple[tuple[Figure, ...], str]:
        shown = [label for label, on in ticked.items() if on]
        if shown:
            show_runs(figures, shown)
        return figures if shown else (), fix_comparison_readout(views, shown, last)

    return Explorer(controls, draw, "vgcourse-fix-explorer")
