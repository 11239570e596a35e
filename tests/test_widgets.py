import matplotlib

matplotlib.use("Agg")

import dataclasses
import math

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import vgcourse.experiments
import vgcourse.training
from vgcourse.activations import derivative
from vgcourse.data import digits, spirals
from vgcourse.experiments import Setup, run
from vgcourse.models import deep_mlp
from vgcourse.probes.layers import layer_gradient_norms
from vgcourse.seeds import SeedRun, run_seeds
from vgcourse.widgets import (
    Explorer,
    derivative_explorer,
    derivative_figure,
    derivative_readout,
    final_layer_norms,
    figure_png,
    final_layer_ratio,
    fix_comparison_figures,
    fix_comparison_readout,
    fix_explorer,
    gradient_flow_explorer,
    gradient_flow_norms,
    gradient_flow_readout,
    gradient_norms_figure,
    show_derivatives,
    show_gradient_norms,
    show_runs,
)
from vgcourse.widgets import gradient_flow as gradient_flow_module
from vgcourse.widgets.fixes import as_seed_run


def line(fig, gid, panel):
    (found,) = [l for l in fig.axes[panel].lines if l.get_gid() == gid]
    return found


def marker_y(fig, name, panel):
    return float(line(fig, f"{name} at x", panel).get_ydata()[0])


# --- derivative explorer (notebook 01) --------------------------------------------------------


def test_derivative_figure_marks_the_values_at_x():
    fig = derivative_figure(2.0, 1.0)
    right = fig.axes[1]
    assert float(line(fig, "sigmoid at x", 0).get_xdata()[0]) == 2.0
    assert marker_y(fig, "sigmoid", 0) == pytest.approx(1 / (1 + math.exp(-2)))
    assert marker_y(fig, "sigmoid", 1) == pytest.approx(0.104994, abs=1e-6)
    assert marker_y(fig, "tanh", 1) == pytest.approx(1 - math.tanh(2) ** 2)
    assert sorted(l.get_ydata()[0] for l in right.lines if l.get_linestyle() == "--") == [0.25, 1.0]  # the maxima


def test_derivative_figure_uses_the_scaled_pre_activation():
    plain, scaled = derivative_figure(1.0, 1.0), derivative_figure(1.0, 3.0)
    assert marker_y(scaled, "sigmoid", 1) == pytest.approx(float(derivative("sigmoid", 3.0)))
    assert marker_y(scaled, "sigmoid", 1) < marker_y(plain, "sigmoid", 1)
    curve = line(scaled, "sigmoid", 1)
    x, y = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    np.testing.assert_allclose(y, derivative("sigmoid", torch.tensor(3 * x)).numpy())


def test_derivative_figure_highlights_exactly_the_saturated_range():
    for scale in (1.0, 2.0):
        fig = derivative_figure(0.0, scale)
        highlight = line(fig, "tanh saturated", 0)
        x, y = np.asarray(highlight.get_xdata()), np.asarray(highlight.get_ydata())
        saturated = ~np.isnan(y)
        onset = math.atanh(0.95) / scale  # |tanh(scale·x)| > 0.95 beyond this |x|
        assert np.all(np.abs(x[saturated]) > onset) and np.all(np.abs(x[~saturated]) <= onset)
        assert saturated.any() and not saturated.all()


def test_derivative_readout_states_the_values_and_saturation():
    text = derivative_readout(0.5, 1.0)
    assert "σ'(z) = 0.2350" in text and "tanh'(z) = 0.7864" in text and "saturated" not in text
    text = derivative_readout(2.0, 1.0)
    assert "σ'(z) = 0.1050 (42.0% of its maximum 1/4)" in text
    assert text.split("<br>")[2].endswith("<b>saturated</b>") and "saturated" not in text.split("<br>")[1]
    assert "z = scale·x = 3.00" in derivative_readout(1.5, 2.0)


@pytest.mark.parametrize(
    "args, message",
    [
        ((7.0, 1.0), r"x must lie in \[-6, 6\], got 7.0"),
        ((1.0, 0.0), "scale must be positive, got 0.0"),
        (("1", 1.0), "x must be a finite number, got '1'"),
        ((True, 1.0), "x must be a finite number, got True"),
        ((1.0, float("nan")), "scale must be a finite number, got nan"),
    ],
)
def test_derivative_figure_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        derivative_figure(*args)


def test_derivative_explorer_redraws_when_a_slider_moves():
    explorer = derivative_explorer()
    assert isinstance(explorer, ipywidgets.VBox)
    assert "vgcourse-derivative-explorer" in explorer._dom_classes
    first = list(explorer.controls.values())[0]
    assert isinstance(first, ipywidgets.FloatSlider) and first.description == "x"
    before_text, before_png = explorer.readout.value, explorer.images[0].value
    assert before_text == derivative_readout(2.0, 1.0) and before_png[:4] == b"\x89PNG"

    explorer.controls["x"].value = 0.5
    assert explorer.readout.value == derivative_readout(0.5, 1.0)
    assert marker_y(explorer.figures[0], "sigmoid", 1) == pytest.approx(0.2350, abs=1e-4)
    assert explorer.images[0].value != before_png

    explorer.controls["scale"].value = 3.0
    assert "z = scale·x = 1.50" in explorer.readout.value
    assert marker_y(explorer.figures[0], "sigmoid", 1) == pytest.approx(float(derivative("sigmoid", 1.5)))


def test_derivative_explorer_rejects_settings_its_sliders_cannot_show():
    with pytest.raises(ValueError, match=r"scale must lie in \[0.25, 4.0\] for the explorer, got 10"):
        derivative_explorer(scale=10)
    with pytest.raises(ValueError, match="x must lie in"):
        derivative_explorer(x=-8)


def test_show_derivatives_redraws_in_place_what_derivative_figure_draws():
    figure = derivative_figure(2.0, 1.0)
    show_derivatives(figure, -0.5, 2.5)
    fresh = derivative_figure(-0.5, 2.5)
    for gid in ("sigmoid", "tanh at x", "tanh saturated", "x"):
        for panel in (0, 1):
            np.testing.assert_array_equal(line(figure, gid, panel).get_xydata(), line(fresh, gid, panel).get_xydata())
    assert figure.axes[0].get_title() == fresh.axes[0].get_title() == "activation f(z), z = 2.50·x"
    with pytest.raises(ValueError, match="one made by derivative_figure"):
        show_derivatives(gradient_norms_figure(3), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"x must lie in \[-6, 6\]"):
        show_derivatives(figure, 6.5, 1.0)


def test_explorer_redraws_its_figure_in_place_and_leaks_none():
    explorer = derivative_explorer()
    open_before, figure, png = plt.get_fignums(), explorer.figures[0], explorer.images[0].value
    image = explorer.images[0]
    explorer.controls["x"].value = -1.0
    assert explorer.figures[0] is figure and explorer.images[0] is image and image.value != png
    assert plt.get_fignums() == open_before  # no figure left open in pyplot


@pytest.mark.parametrize("make", [lambda: derivative_figure(x=2.0, scale=1.0),
                                  lambda: gradient_norms_figure(20, "sigmoid")])
def test_an_explorer_image_is_the_inline_figure_pixel_for_pixel(make):
    """The static copy under an explorer is the inline backend's PNG (``bbox_inches="tight"``);
    the explorer's image is the same picture, so the page shows both at one size and font."""
    import io

    from IPython.core.pylabtools import print_figure
    from PIL import Image

    figure = make()
    inline = np.asarray(Image.open(io.BytesIO(print_figure(figure, "png", bbox_inches="tight"))).convert("RGBA"))
    shown = np.asarray(Image.open(io.BytesIO(figure_png(figure))).convert("RGBA"))
    assert shown.shape == inline.shape and shown.shape[1] < figure.get_size_inches()[0] * figure.dpi  # cropped
    assert np.array_equal(shown, inline)
    plt.close(figure)
    with pytest.raises(TypeError, match="figure must be a matplotlib Figure, got str"):
        figure_png("figure")


def test_explorer_images_keep_their_size_in_the_box():
    layout = derivative_explorer().images[0].layout
    assert (layout.max_width, layout.height, layout.align_self) == ("100%", "auto", "flex-start")  # not stretched


def test_explorer_checks_its_controls():
    with pytest.raises(TypeError, match="controls must be a non-empty mapping"):
        Explorer({"x": ipywidgets.Button()}, lambda x: ((), ""), "c")


# --- gradient-flow explorer (notebook 02) -----------------------------------------------------


def test_gradient_flow_norms_are_notebook_02s_measurement():
    data = digits(seed=0)
    model = deep_mlp(64, 10, depth=6, width=64, activation="tanh", init="xavier", residual=True, seed=1)
    expected = layer_gradient_norms(model, data.x_train[:256], data.y_train[:256])
    assert gradient_flow_norms(6, "tanh", "xavier", False, True, seed=1) == expected


def test_gradient_flow_norms_are_cached():
    gradient_flow_module._norms.cache_clear()
    first = gradient_flow_norms(5, "relu", "he")
    first[0] = -1.0  # the caller's copy; the cache must not change
    again = gradient_flow_norms(5, "relu", "he")
    assert gradient_flow_module._norms.cache_info().hits == 1 and again[0] > 0


def test_a_flow_setting_is_frozen_checked_and_keys_the_cache():
    setting = gradient_flow_module.FlowSetting(5, "relu", "he")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setting.depth = 6
    assert setting == gradient_flow_module.FlowSetting(depth=5, activation="relu", init="he") and setting.label == "relu, he init"
    gradient_flow_module._norms.cache_clear()
    gradient_flow_norms(5, "relu", "he")
    gradient_flow_module._norms(gradient_flow_module.FlowSetting(5, "relu", "he", False, False, 0))
    assert gradient_flow_module._norms.cache_info().hits == 1
    with pytest.raises(ValueError, match=r"unknown activation \['relu'\]"):  # checked before any hashing
        gradient_flow_module.FlowSetting(activation=["relu"])


def test_gradient_flow_norms_show_the_decay_and_its_fixes():
    sigmoid = gradient_flow_norms(20)
    assert len(sigmoid) == 20 and sigmoid[0] / sigmoid[-1] < 1e-12
    residual = gradient_flow_norms(20, residual=True)
    assert residual[0] / residual[-1] > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 1}, "depth must be an integer >= 2"),
        ({"depth": 4.0}, "depth must be an integer >= 2 .*got 4.0"),
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"init": "lecun"}, r"unknown init 'lecun'; choose one of \['default', 'xavier', 'he'\]"),
        ({"init": ["he"]}, r"unknown init \['he'\]"),
        ({"batch_norm": "yes"}, "batch_norm must be True or False, got 'yes'"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_gradient_flow_norms_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradient_flow_norms(**kwargs)


def test_gradient_norms_figure_plots_the_norms_on_a_log_scale():
    fig = gradient_norms_figure(8, "relu", "he", batch_norm=True)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert list(ax.lines[0].get_xdata()) == list(range(1, 9))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), gradient_flow_norms(8, "relu", "he", True))
    assert ax.lines[0].get_label() == "relu, he init, batch norm"


def test_show_gradient_norms_redraws_in_place():
    figure = gradient_norms_figure(20)
    norms = show_gradient_norms(figure, 6, "tanh", "xavier", residual=True)
    fresh = gradient_norms_figure(6, "tanh", "xavier", residual=True)
    (line,), (expected,) = figure.axes[0].lines, fresh.axes[0].lines
    np.testing.assert_array_equal(line.get_xydata(), expected.get_xydata())
    assert line.get_ydata().tolist() == norms and line.get_label() == expected.get_label()
    assert figure.axes[0].get_title() == fresh.axes[0].get_title()
    low, high = figure.axes[0].get_ylim()
    assert low <= min(norms) and max(norms) <= high  # the axis follows the new data
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["tanh, xavier init, residual"]
    with pytest.raises(ValueError, match="one made by gradient_norms_figure"):
        show_gradient_norms(derivative_figure(), 5)


def test_gradient_flow_readout():
    text = gradient_flow_readout([1e-6, 1e-4, 1e-2, 1.0])
    # The headline compares layer 1 with the last hidden layer; the output layer comes second.
    assert text.startswith("<b>layer 1 / layer 3 (last hidden) gradient norm = 1.0e-04</b>; layer 1 / layer 4 (output) = 1.0e-06")
    spike = gradient_flow_readout([0.5, 0.5, 0.5, 400.0])       # a flat profile with an output spike
    assert "(last hidden) gradient norm = 1.0e+00</b>" in spike and "(output) = 1.3e-03" in spike
    assert gradient_flow_readout([1e-3, 1.0]).startswith("<b>layer 1 / layer 2 gradient norm = 1.0e-03</b>")
    assert "fitted factor per layer, from layer 3 back to layer 2: ×0.010" in text
    assert "underflowed to exactly zero" in gradient_flow_readout([0.0, 1e-30, 1e-20, 1.0])
    assert "fitted factor" not in gradient_flow_readout([0.0, 0.0, 1e-20, 1.0])
    assert "undefined" in gradient_flow_readout([1.0, 0.0])
    with pytest.raises(ValueError, match="at least two layers, got 1"):
        gradient_flow_readout([1.0])


def test_gradient_flow_explorer_follows_its_controls():
    explorer = gradient_flow_explorer()
    figure = explorer.figures[0]
    assert "vgcourse-gradient-flow-explorer" in explorer._dom_classes
    assert list(explorer.controls) == ["depth", "activation", "init", "batch_norm", "residual"]
    curve = lambda: explorer.figures[0].axes[0].lines[0]
    assert len(curve().get_ydata()) == 20 and "layer 1 / layer 19 (last hidden)" in explorer.readout.value

    explorer.controls["depth"].value = 10
    assert len(curve().get_xdata()) == 10
    np.testing.assert_allclose(curve().get_ydata(), gradient_flow_norms(10))
    assert explorer.readout.value == gradient_flow_readout(gradient_flow_norms(10))

    plain = gradient_flow_norms(10)
    explorer.controls["residual"].value = True
    assert curve().get_label() == "sigmoid, default init, residual"
    assert explorer.readout.value == gradient_flow_readout(gradient_flow_norms(10, residual=True))
    shown = np.asarray(curve().get_ydata())
    assert shown[0] / shown[-1] > 100 * plain[0] / plain[-1]  # the skip path carries the gradient

    explorer.controls["activation"].value = "relu"
    explorer.controls["init"].value = "he"
    explorer.controls["batch_norm"].value = True
    np.testing.assert_allclose(curve().get_ydata(), gradient_flow_norms(10, "relu", "he", True, True))
    assert explorer.figures == (figure,)  # one figure, redrawn in place


def test_gradient_flow_explorer_rejects_depths_its_slider_cannot_show():
    with pytest.raises(ValueError, match=r"depth must lie in \[2, 50\] for the explorer, got 80"):
        gradient_flow_explorer(depth=80)


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
