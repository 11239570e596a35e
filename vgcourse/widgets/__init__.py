"""ipywidgets explorers: move a control, and the figure and the numbers under it change.

Each explorer function returns an :class:`Explorer` (an ``ipywidgets.VBox``). What it shows
comes from plain functions in the same module, which the notebooks also call for a static copy
of the explorer's default view, and which the tests call without a browser:

- ``derivative``: σ, tanh and their derivatives at a point x (notebook 01);
- ``gradient_flow``: per-layer gradient norms of a fresh deep MLP at initialization (notebook 02);
- ``fixes``: learning curves and gradient flow of runs trained beforehand (notebook 10);
- ``explorer``: the wiring they share.
"""

from vgcourse.widgets.derivative import derivative_explorer, derivative_figure, derivative_readout, show_derivatives
from vgcourse.widgets.explorer import Explorer, figure_png
from vgcourse.widgets.fixes import (
    final_layer_norms,
    final_layer_ratio,
    fix_comparison_figures,
    fix_comparison_readout,
    fix_explorer,
    show_runs,
)
from vgcourse.widgets.gradient_flow import (
    FlowSetting,
    gradient_flow_explorer,
    gradient_flow_norms,
    gradient_flow_readout,
    gradient_norms_figure,
    setting_label,
    show_gradient_norms,
)

__all__ = [
    "Explorer",
    "FlowSetting",
    "derivative_explorer",
    "derivative_figure",
    "derivative_readout",
    "figure_png",
    "final_layer_norms",
    "final_layer_ratio",
    "fix_comparison_figures",
    "fix_comparison_readout",
    "fix_explorer",
    "gradient_flow_explorer",
    "gradient_flow_norms",
    "gradient_flow_readout",
    "gradient_norms_figure",
    "setting_label",
    "show_derivatives",
    "show_gradient_norms",
    "show_runs",
]
