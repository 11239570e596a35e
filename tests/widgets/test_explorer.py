"""Tests for vgcourse.widgets.explorer: the wiring every explorer shares (in-place redraws, images)."""

import matplotlib

matplotlib.use("Agg")


import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

from vgcourse.widgets import (
    Explorer,
    derivative_explorer,
    derivative_figure,
    figure_png,
    gradient_norms_figure,
)


# --- explorer wiring --------------------------------------------------------------------------


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


