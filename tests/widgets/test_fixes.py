"""Tests for vgcourse.widgets.fixes: the fix explorer of notebook 10."""

import matplotlib

matplotlib.use("Agg")

import math

import numpy as np
import pytest

import vgcourse.experiments
import vgcourse.training
from vgcourse.data import spirals
from vgcourse.experiments import Setup, run
from vgcourse.seeds import run_seeds
from vgcourse.widgets import (
    final_layer_norms,
    final_layer_ratio,
    fix_comparison_figures,
    fix_comparison_readout,
    fix_explorer,
    show_runs,
)
from vgcourse.widgets.fixes import as_seed_run


# --- fix explorer (notebook 10) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def runs():
    data = spirals(n=200)
    base = Setup(depth=4, width=8, epochs=2, batch_size=50)
    setups = {"plain": base, "relu": base.changed(activation="relu", init="he"),
              "residual": base.changed(residual=True)}
    return {label: run(setup, data, histograms=False) for label, setup in setups.items()}


def test_final_layer_norms_and_ratio_summarize_the_last_steps(runs):
    norms = runs["plain"].monitor.grad_norms()
    # independent values: the median of three is the middle one, of two the mean of the pair
    middle = [sorted(float(v) for v in norms[-3:, j])[1] for j in range(norms.shape[1])]
    np.testing.assert_allclose(final_layer_norms(runs["plain"], last=3), middle)
    (a1, aL), (b1, bL) = (float(norms[-2, 0]), float(norms[-2, -1])), (float(norms[-1, 0]), float(norms[-1, -1]))
    assert final_layer_ratio(runs["plain"], last=2) == pytest.approx((a1 / aL + b1 / bL) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="last must be a positive integer, got 0"):
        final_layer_norms(runs["plain"], last=0)


def visible(ax):
    return [l.get_label() for l in ax.lines if l.get_visible()]


def test_fix_comparison_figures_overlay_the_selected_runs_in_fixed_colours(runs):
    curves, flow = fix_comparison_figures(runs)
    assert visible(curves.axes[0]) == visible(curves.axes[1]) == visible(flow.axes[0]) == ["plain", "relu", "residual"]
    colours = {l.get_label(): l.get_color() for l in flow.axes[0].lines}
    np.testing.assert_allclose(flow.axes[0].lines[2].get_ydata(), final_layer_norms(runs["residual"]))
    np.testing.assert_allclose(curves.axes[1].lines[1].get_ydata(), runs["relu"].history.test_accuracy)

    curves, flow = fix_comparison_figures(runs, ["residual"])
    assert visible(curves.axes[0]) == visible(flow.axes[0]) == ["residual"]
    (only,) = [l for l in flow.axes[0].lines if l.get_visible()]
    assert only.get_color() == colours["residual"] != colours["plain"]
    assert [t.get_text() for t in flow.axes[0].get_legend().get_texts()] == ["residual"]
    low, high = flow.axes[0].get_ylim()  # the axis fits the shown run
    norms = final_layer_norms(runs["residual"])
    assert low <= norms.min() and norms.max() <= high and high < 10 * norms.max()


def test_show_runs_hides_and_shows_lines_in_place(runs):
    figures = fix_comparison_figures(runs, ["plain"])
    show_runs(figures, ["relu", "residual"])
    assert visible(figures[0].axes[1]) == visible(figures[1].axes[0]) == ["relu", "residual"]
    with pytest.raises(ValueError, match="non-empty sequence of run labels, got 'relu'"):
        show_runs(figures, "relu")


def test_show_runs_keeps_the_learning_curves_legend_below_and_refits_the_loss_axis():
    from vgcourse.plots import learning_curves_figure
    from vgcourse.training import History

    calm = History(test_loss=[2.3, 1.0, 0.5], test_accuracy=[0.1, 0.7, 0.9])
    spiky = History(test_loss=[2.4, 65.0, 0.4], test_accuracy=[0.1, 0.1, 0.9])
    curves = learning_curves_figure({"calm": calm, "spiky": spiky})

    def shown():
        curves.draw_without_rendering()
        (legend,) = curves.legends  # one legend, for the figure, below the axes
        notes = [t.get_text() for t in curves.axes[0].texts if t.get_visible()]
        return [t.get_text() for t in legend.texts], curves.axes[0].get_ylim(), notes, legend

    show_runs((curves,), ["calm"])
    labels, (low, high), notes, legend = shown()
    assert labels == ["calm"] and all(ax.get_legend() is None for ax in curves.axes)  # none on the data
    assert (low, high) == pytest.approx((0, 1.15 * 2.3)) and notes == []            # nothing clipped
    assert all(legend.get_window_extent().y1 <= ax.get_window_extent().y0 for ax in curves.axes)
    assert curves.axes[1].get_ylim() == (0, 1)
    show_runs((curves,), ["calm", "spiky"])
    labels, (low, high), notes, _ = shown()
    assert labels == ["calm", "spiky"] and (low, high) == pytest.approx((0, 1.15 * 2.4))
    assert notes == ["values above 2.76 clipped"]


def test_fix_comparison_checks_its_arguments(runs):
    with pytest.raises(ValueError, match=r"unknown run 'bn'; choose from \['plain', 'relu', 'residual'\]"):
        fix_comparison_figures(runs, ["bn"])
    with pytest.raises(TypeError, match="not the string 'relu'"):
        fix_comparison_figures(runs, "relu")
    with pytest.raises(ValueError, match=r"non-empty sequence of run labels, got \[\]"):
        fix_comparison_figures(runs, [])
    with pytest.raises(TypeError, match=r"runs\['x'\] must be a vgcourse.experiments.Run or vgcourse.seeds.SeedRun, got dict"):
        fix_explorer({"x": {}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        fix_explorer({})


def test_fix_comparison_readout_lists_accuracy_and_ratio(runs):
    text = fix_comparison_readout(runs, ["relu"])
    assert f"<td>relu</td><td>{runs['relu'].history.test_accuracy[-1]:.1%}</td>" in text
    assert f"{final_layer_ratio(runs['relu']):.1e}" in text and "plain" not in text


def test_fix_explorer_replots_without_training(runs, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the fix explorer must not train")

    monkeypatch.setattr(vgcourse.experiments, "train", no_training)
    monkeypatch.setattr(vgcourse.training, "train", no_training)
    explorer = fix_explorer(runs, selected=["plain", "relu"])
    assert "vgcourse-fix-explorer" in explorer._dom_classes
    assert [c.value for c in explorer.controls.values()] == [True, True, False]
    labels = lambda: visible(explorer.figures[1].axes[0])
    assert labels() == ["plain", "relu"] and len(explorer.images) == 2

    explorer.controls["residual"].value = True
    explorer.controls["plain"].value = False
    assert labels() == ["relu", "residual"]
    assert "<td>residual</td>" in explorer.readout.value and "<td>plain</td>" not in explorer.readout.value

    for control in explorer.controls.values():
        control.value = False
    assert explorer.figures == () and explorer.images == ()
    assert "Tick at least one" in explorer.readout.value
    explorer.controls["plain"].value = True
    assert labels() == ["plain"] and len(explorer.images) == 2


@pytest.fixture(scope="module")
def seed_runs():
    base = Setup(depth=4, width=8, epochs=2, batch_size=50)
    data_for = lambda seed: spirals(n=200, seed=seed)
    return {"plain": run_seeds(base, seeds=(0, 1), data_for=data_for),
            "blows up": run_seeds(base.changed(activation="relu", init="he", weight_scale=8.0, lr=1e3),
                                  seeds=(0, 1), data_for=data_for),
            "overflows": run_seeds(base.changed(activation="relu", init="he", weight_scale=1e12),
                                   seeds=(0, 1), data_for=data_for)}


def test_fix_explorer_takes_seed_runs_and_runs_alike(runs, seed_runs, monkeypatch):
    plain, blown = seed_runs["plain"][0], seed_runs["blows up"][0]
    assert blown.diverged and not plain.diverged
    # one definition of the ratio, diagnosis.first_last_ratio, for a SeedRun and for a monitored Run
    assert final_layer_ratio(plain, last=5) == plain.first_last_ratio(5)
    assert final_layer_ratio(runs["relu"], last=5) == as_seed_run(runs["relu"]).first_last_ratio(5)
    np.testing.assert_array_equal(as_seed_run(runs["relu"]).grad_norms(), runs["relu"].monitor.grad_norms())
    assert as_seed_run(plain) is plain
    np.testing.assert_allclose(final_layer_norms(plain, last=3), np.median(plain.grad_norms()[-3:], axis=0))
    with pytest.raises(TypeError, match="Run or vgcourse.seeds.SeedRun, got SeedRuns"):
        as_seed_run(seed_runs["plain"])

    mixed = {"seed 0": plain, "monitored": runs["relu"], "blows up": blown}
    monkeypatch.setattr(vgcourse.training, "train", lambda *a, **k: pytest.fail("the fix explorer must not train"))
    curves, flow = fix_comparison_figures(mixed)
    np.testing.assert_allclose(curves.axes[1].lines[0].get_ydata(), plain.history.test_accuracy)
    np.testing.assert_allclose(flow.axes[0].lines[0].get_ydata(), final_layer_norms(plain))
    text = fix_comparison_readout(mixed)
    assert f"<td>seed 0</td><td>{plain.history.test_accuracy[-1]:.1%}</td><td>{plain.first_last_ratio(100):.1e}</td>" in text
    assert f"<td>blows up</td><td>diverged at step {blown.history.diverged_at}</td>" in text
    explorer = fix_explorer(mixed, selected=["seed 0"])
    explorer.controls["blows up"].value = True
    assert visible(explorer.figures[1].axes[0]) == ["seed 0", "blows up"]
    assert "diverged at step" in explorer.readout.value


def test_fix_explorer_shows_a_run_that_diverged_before_its_first_step(seed_runs):
    dead = seed_runs["overflows"][0]
    assert dead.history.diverged_at == 0 and len(dead.grad_norms()) == 0
    runs = {"seed 0": seed_runs["plain"][0], "overflows": dead}
    assert np.isnan(final_layer_norms(dead)).all() and math.isnan(final_layer_ratio(dead))
    assert "<td>overflows</td><td>diverged at step 0</td><td>nan</td>" in fix_comparison_readout(runs)
    explorer = fix_explorer(runs)
    assert visible(explorer.figures[1].axes[0]) == ["seed 0", "overflows"] and len(explorer.images) == 2
