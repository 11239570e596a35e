"""Tests for vgcourse.widgets.gradient_flow: the gradient-flow explorer of notebook 02."""

import matplotlib

matplotlib.use("Agg")

import dataclasses

import numpy as np
import pytest

from vgcourse.data import digits
from vgcourse.models import deep_mlp
from vgcourse.probes.layers import layer_gradient_norms
from vgcourse.widgets import (
    derivative_figure,
    gradient_flow_explorer,
    gradient_flow_norms,
    gradient_flow_readout,
    gradient_norms_figure,
    show_gradient_norms,
)
from vgcourse.widgets import gradient_flow as gradient_flow_module


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
        ({"init": "orthogonal"}, r"unknown init 'orthogonal'; choose one of \['default', 'xavier', 'he', 'lecun'\]"),
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


