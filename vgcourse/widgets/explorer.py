"""The wiring every explorer shares: controls, a text readout, and figures shown as images.

An explorer's logic is a plain function ``draw(**control_values) -> (figures, readout_html)``;
:class:`Explorer` calls it once at the start and again whenever a control changes, and shows
what it returns. Nothing else happens in the widget, so the logic is tested without a browser.

For speed, ``draw`` may return the same Figure objects every time, changed in place: a new
Figure costs a fresh layout and a fresh text renderer, about three times the cost of redrawing
one that exists (``benchmarks/widget_update.py``).
"""

from __future__ import annotations

import io
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Draw = Callable[..., tuple[Sequence[Figure], str]]


def figure_png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes, cropped as the notebook's inline figures are.

    The inline backend saves with ``bbox_inches="tight"``: the drawn content plus
    ``savefig.pad_inches``. This gives the same image (same size, so the same scale on the page as
    the static copy of the figure) from one drawing pass instead of the two that ``"tight"``
    costs, by cropping the drawn canvas to that box; and it compresses lightly: the image goes to a
    browser a few centimetres away, not to disk.
    """
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        # A figure closed by pyplot has no canvas of its own, and savefig would then build a new
        # renderer on every call, re-measuring every label (log-axis labels are slow mathtext).
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    box = figure.get_tightbbox(canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    height, width = pixels.shape[:2]
    dpi = figure.dpi  # the box is in inches from the bottom left; pixel rows count from the top
    left, top = max(0, round(box.x0 * dpi)), max(0, round(height - box.y1 * dpi))
    right, bottom = min(width, left + round(box.width * dpi)), min(height, top + round(box.height * dpi))
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels[top:bottom, left:right]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class Explorer(widgets.VBox):
    """Controls on top, then a readout, then the figures; changing any control redraws both.

    Attributes:
        controls: the control widgets by name; ``explorer.controls["x"].value = 1.5`` redraws.
        readout: an ``HTML`` widget with the numbers behind the current figures.
        figures: the Figures ``draw`` returned for the current control values.
        images: one ``ipywidgets.Image`` per figure, holding its PNG.
    """

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], draw: Draw, css_class: str) -> None:
        super().__init__()
        if not controls or not all(isinstance(c, widgets.ValueWidget) for c in controls.values()):
            raise TypeError("controls must be a non-empty mapping of name -> ipywidgets value widget")
        self.controls = dict(controls)
        self.readout = widgets.HTML()
        self.figures: tuple[Figure, ...] = ()
        self._draw = draw
        self._image_box = widgets.VBox()
        panel = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.children = [panel, self.readout, self._image_box]
        self.add_class(css_class)
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def images(self) -> tuple[widgets.Image, ...]:
        """The ``Image`` widgets showing :attr:`figures`, one each, in order."""
        return tuple(self._image_box.children)

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Redraw the figures and the readout from the controls' current values."""
        figures, readout = self._draw(**self.values())
        figures = tuple(figures)
        for old in self.figures:
            if not any(old is figure for figure in figures):
                plt.close(old)  # no longer shown: make sure pyplot does not keep it alive
        self.figures = figures
        images = list(self.images)
        if len(images) != len(self.figures):
            for image in images:
                image.close()
            # Natural size, shrunk only to fit, like an inline figure: a flex box would stretch it.
            layout = dict(max_width="100%", height="auto", align_self="flex-start")
            images = [widgets.Image(format="png", layout=widgets.Layout(**layout)) for _ in self.figures]
            self._image_box.children = images
        for image, figure in zip(images, self.figures):
            image.value = figure_png(figure)
        self.readout.value = readout

    def _on_change(self, change: dict) -> None:
        self.update()
