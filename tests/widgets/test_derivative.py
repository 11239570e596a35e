"""Tests for vgcourse.widgets.derivative: the derivative explorer of notebook 01."""

import matplotlib

matplotlib.use("Agg")

import math

import ipywidgets
import numpy as np
import pytest
import torch

from vgcourse.activations import derivative
from vgcourse.widgets import (
    derivative_explorer,
    derivative_figure,
    derivative_readout,
    gradient_norms_figure,
    show_derivatives,
)


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


