import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vgcourse.plots import activation_figure, activation_histogram_figure, curves_figure, layer_values_figure, lr_sweep_figure


def test_activation_figure_draws_each_function_and_its_bound():
    fig = activation_figure(("sigmoid", "tanh"))
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert len(left.lines) == 2
    derivative_lines = [l for l in right.lines if len(l.get_xdata()) > 2]
    assert max(derivative_lines[0].get_ydata()) == pytest.approx(0.25, abs=1e-3)
    bounds = sorted(l.get_ydata()[0] for l in right.lines if len(l.get_xdata()) == 2)
    assert bounds == [0.25, 1.0]


def test_activation_figure_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation_figure(("swish",))


def test_layer_values_figure_is_log_scaled_with_one_line_per_series():
    fig = layer_values_figure({"sigmoid": [1e-8, 1e-4, 1.0], "relu": [0.5, 0.7, 1.0]})
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(ax.lines[0].get_ydata()) == [1e-8, 1e-4, 1.0]
    assert layer_values_figure({"a": [1, 2]}, log=False).axes[0].get_yscale() == "linear"


def test_curves_figure_checks_lengths():
    fig = curves_figure([1, 2, 4], {"a": [0.1, 0.2, 0.3]}, "scale", "fraction")
    assert fig.axes[0].get_xlabel() == "scale"
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"curves\['a'\] has 2 values but x has 3"):
        curves_figure([1, 2, 3], {"a": [1, 2]}, "x", "y")
    with pytest.raises(ValueError, match="non-empty mapping"):
        curves_figure([1], {}, "x", "y")


def test_activation_histogram_marks_the_saturated_bands():
    values = torch.tensor([-0.99, -0.5, 0.0, 0.98])
    fig = activation_histogram_figure({"layer 1": values, "layer 2": values}, "tanh")
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches if hasattr(p, "get_height")) >= 4
    with pytest.raises(ValueError, match="'sigmoid' or 'tanh'"):
        activation_histogram_figure({"a": values}, "relu")


# --- monitor and history figures ---------------------------------------------------------------

from vgcourse.data import spirals
from vgcourse.models import deep_mlp
from vgcourse.monitor import GradientMonitor
from vgcourse.plots import (
    gradient_flow_figure, histogram_images_figure, histograms_figure, learning_curves_figure, update_ratio_figure,
)
from vgcourse.training import History, train


@pytest.fixture(scope="module")
def trained():
    data = spirals(n=200, seed=0)
    model = deep_mlp(2, 2, depth=5, width=16, activation="sigmoid")
    with GradientMonitor(model, hist_every=5, ratio_every=2) as mon:
        history = train(model, data, epochs=3, batch_size=50, progress=False)  # 3 x 3 = 9 steps
    return mon, history


def test_gradient_flow_figure_shows_layers_and_steps_on_log_scales(trained):
    mon, _ = trained
    fig = gradient_flow_figure(mon)
    left, right = fig.axes
    assert left.get_yscale() == right.get_yscale() == "log"
    assert len(left.lines) == 3  # steps 0, 4 and 8
    np.testing.assert_allclose(left.lines[-1].get_ydata(), mon.grad_norms()[-1])
    assert len(right.lines) == 5 and len(right.lines[0].get_xdata()) == 9
    assert len(gradient_flow_figure(mon, steps=[2]).axes[0].lines) == 1
    with pytest.raises(ValueError, match="step 9 is out of range; the monitor recorded 9 steps"):
        gradient_flow_figure(mon, steps=[9])


def test_histograms_figure_has_one_row_per_layer_and_one_curve_per_recorded_step(trained):
    mon, _ = trained
    fig = histograms_figure(mon, "grad")
    assert len(fig.axes) == 5
    assert [ax.get_ylabel() for ax in fig.axes] == mon.layer_names
    assert all(len(ax.patches) == 2 for ax in fig.axes)  # steps 0 and 5
    assert len(histograms_figure(mon, "grad", max_layers=3).axes) == 3
    act = histograms_figure(mon, "activation")
    assert len(act.axes) == 4  # the output layer has no activation
    assert len(act.axes[0].patches) == 2 + 2  # two histograms, two shaded saturated bands


def test_update_ratio_figure(trained):
    mon, _ = trained
    (ax,) = update_ratio_figure(mon).axes
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 5 + 1  # one per layer and the reference line
    measured = np.flatnonzero(np.isfinite(mon.update_ratios()[:, 0]))
    assert len(measured) >= 2  # a line, not isolated points between NaN gaps
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), measured)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mon.update_ratios()[measured, 0])


def test_learning_curves_figure(trained):
    _, history = trained
    fig = learning_curves_figure({"a": history, "b": history})
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and list(loss_ax.lines[0].get_ydata()) == history.test_loss
    assert acc_ax.get_ylim() == (0, 1)
    regression = History(test_loss=[1.0, 0.5])
    assert len(learning_curves_figure({"r": regression}).axes) == 1
    with pytest.raises(TypeError, match=r"histories\['x'\] must be a vgcourse.training.History"):
        learning_curves_figure({"x": [1, 2]})


def test_monitor_figures_need_a_monitor_with_steps():
    mon = GradientMonitor(deep_mlp(2, 2, depth=2, width=4))
    mon.close()
    with pytest.raises(ValueError, match="recorded no steps"):
        gradient_flow_figure(mon)
    with pytest.raises(TypeError, match="GradientMonitor"):
        update_ratio_figure("monitor")


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _inside(box, figure_box, slack: float = 1.0) -> bool:
    return (box.x0 >= figure_box.x0 - slack and box.y0 >= figure_box.y0 - slack
            and box.x1 <= figure_box.x1 + slack and box.y1 <= figure_box.y1 + slack)


def test_many_layers_get_a_colour_bar_not_a_fifty_entry_legend():
    data = spirals(n=64, seed=0)
    model = deep_mlp(2, 2, depth=50, width=4, activation="sigmoid", residual=True)
    with GradientMonitor(model, histograms=False, activations=False) as mon:
        train(model, data, epochs=1, batch_size=32, progress=False)
    for fig in (gradient_flow_figure(mon), update_ratio_figure(mon)):
        fig.draw_without_rendering()   # what displaying it does: the layout runs
        data_axes = [ax for ax in fig.axes if ax.lines]
        assert all(ax.get_legend() is None or len(ax.get_legend().texts) <= 10 for ax in data_axes)
        bars = [ax for ax in fig.axes if ax not in data_axes]
        assert len(bars) == 1 and "layer" in bars[0].get_ylabel()
        ticks = bars[0].get_yticks()
        assert np.allclose(ticks, np.round(ticks))                    # whole layer numbers
        assert _inside(bars[0].get_window_extent(), fig.bbox)          # on the figure, not below it
    flow = gradient_flow_figure(mon)
    assert np.allclose(flow.axes[0].get_xticks(), np.round(flow.axes[0].get_xticks()))  # layer axis: integers


def test_a_few_layers_get_a_legend_beside_the_axes(trained):
    mon, _ = trained
    fig = update_ratio_figure(mon)
    fig.draw_without_rendering()
    (ax,) = fig.axes
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.texts] == mon.layer_names
    assert not _boxes_overlap(legend.get_window_extent(), ax.get_window_extent())
    assert _inside(legend.get_window_extent(), fig.bbox)


def test_histogram_legend_sits_below_the_rows_not_on_layer_1(trained):
    mon, _ = trained
    fig = histograms_figure(mon, "grad")
    fig.draw_without_rendering()
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.texts] == ["step 0", "step 5"]
    for ax in fig.axes:
        assert not _boxes_overlap(legend.get_window_extent(), ax.get_window_extent())
    assert _inside(legend.get_window_extent(), fig.bbox)


def test_learning_curves_start_at_zero_and_a_spike_does_not_flatten_the_rest():
    stalled = History(test_loss=[2.303, 2.31, 2.30, 2.302], test_accuracy=[0.1, 0.1, 0.11, 0.1])
    fig = learning_curves_figure({"stalled": stalled})
    assert fig.axes[0].get_ylim() == pytest.approx((0, 1.15 * 2.31))   # a flat loss looks flat
    assert not fig.axes[0].texts

    spiky = History(test_loss=[2.4, 1.0, 65.0, 0.5], test_accuracy=[0.1, 0.6, 0.1, 0.8])
    fig = learning_curves_figure({"stalled": stalled, "spiky": spiky})
    fig.draw_without_rendering()
    low, high = fig.axes[0].get_ylim()
    assert low == 0 and high == pytest.approx(1.15 * 2.4)                # the others stay readable
    assert any("clipped" in t.get_text() for t in fig.axes[0].texts)     # and the clip is said
    (legend,) = fig.legends
    for ax in fig.axes:                                                  # the legend is off the data
        assert not _boxes_overlap(legend.get_window_extent(), ax.get_window_extent())
    assert _inside(legend.get_window_extent(), fig.bbox)

    ticks = [tick for ax in fig.axes for tick in ax.get_xticks()]
    assert ticks and all(float(tick).is_integer() for tick in ticks)     # epochs are whole numbers
    rising = History(test_loss=[1.0, 1.5, 1.8])                           # a real rise is shown whole
    assert learning_curves_figure({"r": rising}).axes[0].get_ylim() == pytest.approx((0, 1.15 * 1.8))


def test_histogram_images_show_one_image_per_layer_with_every_recorded_step(trained):
    mon, _ = trained
    fig = histogram_images_figure(mon, "activation")
    layers = fig.axes[:-1]  # and a colour bar
    assert [ax.get_ylabel() for ax in layers] == mon.layer_names[:-1]  # the output layer has no activation
    (mesh,) = layers[0].collections
    image = np.asarray(mesh.get_array())
    assert image.shape == (mon.bins, 2)  # bins x recorded steps (0 and 5)
    np.testing.assert_allclose(image.sum(axis=0), 1.0)  # each column: the shares of that step's values
    (first,) = [r for r in mon.histograms("activation") if r.layer == mon.layer_names[0] and r.step == 0]
    np.testing.assert_allclose(first.edges, np.linspace(0, 1, mon.bins + 1))  # a sigmoid's fixed range: no rebinning
    np.testing.assert_allclose(image[:, 0] * first.counts.sum(), first.counts)
    assert layers[-1].get_xlabel() == "training step"
    assert len(histogram_images_figure(mon, "grad", max_layers=3).axes) == 3 + 1


def test_rebinning_keeps_the_counts_where_they_were():
    from vgcourse.plots import _rebinned
    from vgcourse.records import Histogram

    record = Histogram(step=0, layer="a", edges=np.array([0.0, 1.0, 2.0]), counts=np.array([4, 2]))
    np.testing.assert_allclose(_rebinned(record, np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0])), [0, 2, 2, 2, 0])


def test_histogram_images_reject_bad_arguments(trained):
    mon, _ = trained
    with pytest.raises(ValueError, match="kind"):
        histogram_images_figure(mon, "weights")
    with pytest.raises(ValueError, match="max_layers"):
        histogram_images_figure(mon, max_layers=1)


def test_lr_sweep_figure_puts_the_learning_rate_on_a_log_axis_in_order():
    fig = lr_sweep_figure({"a": {1.0: 0.5, 0.03: 0.9, 0.3: 0.7}, "b": {0.1: 0.2}}, "median accuracy", "grid")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear" and ax.get_title() == "grid"
    first = ax.get_lines()[0]
    assert list(first.get_xdata()) == [0.03, 0.3, 1.0] and list(first.get_ydata()) == [0.9, 0.7, 0.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


@pytest.mark.parametrize("curves, message", [
    ({}, "non-empty mapping"),
    ({"a": [0.5]}, r"curves\['a'\] must map learning rates to values"),
    ({"a": {-0.1: 0.5}}, "not a positive number"),
])
def test_lr_sweep_figure_rejects_bad_curves(curves, message):
    with pytest.raises(ValueError, match=message):
        lr_sweep_figure(curves, "y")
