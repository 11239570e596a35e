import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vgcourse.plots import activation_figure, activation_histogram_figure, curves_figure, layer_values_figure


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
