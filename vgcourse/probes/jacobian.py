"""The Jacobian of a stack of layers at one input, and how close its singular values are to 1.

The forward pass maps a small change ``dh`` of layer ``first - 1``'s output to ``J dh`` at layer
``last``; the backward pass maps the gradient ``g`` at layer ``last`` to ``Jᵀ g``. Both multiply by
the same

    J = D_last W_last ⋯ D_first W_first,        D_l = diag(f'(z_l)),

so its singular values decide how much of a signal or a gradient survives in every direction. A
network is *dynamically isometric* when they are all near 1 (Saxe, McClelland & Ganguli 2014;
Pennington, Schoenholz & Ganguli 2017).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from vgcourse.models import DeepMLP
from vgcourse.validation import check_int, check_number

ISOMETRY_BAND = (0.5, 2.0)
"""Singular values in this range count as "near 1": a signal keeps at least half and at most twice its size."""

ZERO_RTOL = 1e-10
"""A singular value below this fraction of the largest is a numerical zero (float64 rounding of a
matrix whose exact rank is lower leaves values near 1e-16 of the largest)."""


def jacobian(model: DeepMLP, x: Tensor, first: int = 1, last: int | None = None) -> Tensor:
    """The Jacobian ``∂h_last / ∂h_{first-1}`` of a course MLP's layers ``first`` to ``last`` at the input ``x``.

    ``h_0`` is the input and ``h_l`` the output of layer ``l`` (``deep_mlp`` names them ``layer1`` …
    ``layerL``; layer L is the linear readout). The layers below ``first`` only carry ``x`` up to
    where the Jacobian starts. Computed in float64 (``torch.func.functional_call`` with float64 copies
    of the weights) in eval mode, one backward pass for all rows; the model itself is left as it was.

    Args:
        model: a :class:`~vgcourse.models.DeepMLP`.
        x: one input, of shape ``(in_features,)`` or ``(1, in_features)``.
        first: the first layer of the product, 1 … L (1: the Jacobian with respect to the input).
        last: the last layer of the product, ``first`` … L; ``None`` means L, the output.

    Returns:
        a float64 tensor of shape ``(width of layer last, width of layer first - 1)``.
    """
    if not isinstance(model, DeepMLP):
        raise TypeError(f"model must be a vgcourse.models.DeepMLP, got {type(model).__name__}")
    depth = len(model)
    check_int(first, "first", minimum=1, maximum=depth)
    last = depth if last is None else check_int(last, "last", minimum=first, maximum=depth)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor (one input), got {type(x).__name__}")
    if tuple(x.shape) not in ((model.in_features,), (1, model.in_features)):
        raise ValueError(f"x must be one input of shape ({model.in_features},) or (1, {model.in_features}), "
                         f"got {tuple(x.shape)}")
    children = list(model.named_children())
    state = {name: value.detach().to(torch.float64) if value.is_floating_point() else value
             for name, value in (*model.named_parameters(), *model.named_buffers())}
    device = next(model.parameters()).device

    def run(h: Tensor, start: int, stop: int) -> Tensor:
        # layers start+1 ... stop with float64 copies of their weights: one functional_call for the stack
        chosen = children[start:stop]
        stack = nn.Sequential(*(layer for _, layer in chosen))
        own = {f"{i}.{key[len(name) + 1:]}": value for i, (name, _) in enumerate(chosen)
               for key, value in state.items() if key.startswith(name + ".")}
        return torch.func.functional_call(stack, own, (h,)) if chosen else h

    modes = [(module, module.training) for module in model.modules()]
    model.eval()  # batch norm uses its running statistics: the rows below are independent examples
    try:
        with torch.no_grad():
            h = run(x.detach().reshape(1, -1).to(device=device, dtype=torch.float64), 0, first - 1)
        top = children[last - 1][1]
        outputs = getattr(top, "linear", top).out_features
        # Row i of J is the gradient of output i: one backward pass through a batch of copies of h.
        copies = h.expand(outputs, -1).clone().requires_grad_(True)
        with torch.enable_grad():
            out = run(copies, first - 1, last)
            (rows,) = torch.autograd.grad(out.diagonal().sum(), copies)
    finally:
        for module, mode in modes:
            module.training = mode
    return rows.cpu()


def singular_values(model: DeepMLP, x: Tensor, first: int = 1, last: int | None = None) -> Tensor:
    """The singular values of :func:`jacobian` ``(model, x, first, last)``, largest first, in float64."""
    return torch.linalg.svdvals(jacobian(model, x, first, last))


def _values(values: object) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence of singular values, got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError("values must be finite and non-negative (singular values)")
    return array


def _band(low: float, high: float) -> tuple[float, float]:
    check_number(low, "low", 0)
    check_number(high, "high", low)
    return float(low), float(high)


def isometry_share(values: Sequence[float] | Tensor, low: float = ISOMETRY_BAND[0],
                   high: float = ISOMETRY_BAND[1]) -> float:
    """The fraction of ``values`` (singular values) in ``[low, high]``.

    Args:
        values: singular values, e.g. from :func:`singular_values`.
        low, high: the band, ``0 < low < high``; default :data:`ISOMETRY_BAND`.

    Returns:
        a number in [0, 1]; 1 for an isometry (every singular value 1).
    """
    array = _values(values)
    low, high = _band(low, high)
    return float(np.mean((array >= low) & (array <= high)))


def nonzero_count(values: Sequence[float] | Tensor) -> int:
    """How many of ``values`` are above :data:`ZERO_RTOL` times the largest: the Jacobian's numerical rank."""
    array = _values(values)
    return int(np.sum(array > ZERO_RTOL * array.max())) if array.max() > 0 else 0


def best_scaled_share(values: Sequence[float] | Tensor, low: float = ISOMETRY_BAND[0],
                      high: float = ISOMETRY_BAND[1]) -> float:
    """The largest :func:`isometry_share` of ``c · values`` over every scale ``c > 0``.

    In a ReLU network without biases, a gain ``g`` on every layer multiplies the Jacobian of ``k``
    layers by exactly ``g^k`` (ReLU is positively homogeneous), so this is the best share any gain can
    reach. Numerical zeros (:func:`nonzero_count`) never count: no scale moves them into the band.

    Args:
        values: singular values.
        low, high: the band, ``0 < low < high``.

    Returns:
        a number in [0, 1], at least :func:`isometry_share` of ``values``.
    """
    array = _values(values)
    low, high = _band(low, high)
    kept = np.sort(array[array > ZERO_RTOL * array.max()]) if array.max() > 0 else np.array([])
    if kept.size == 0:
        return 0.0
    # The best window [a, a·high/low] can start at a kept value: count the values up to its end.
    ends = np.searchsorted(kept, kept * (high / low) * (1 + 1e-12), side="right")
    return float((ends - np.arange(kept.size)).max() / array.size)


def spectra_figure(spectra: Mapping[str, Mapping[str, Sequence[float] | Tensor]], title: str = "") -> Figure:
    """One panel per entry of ``spectra``: each labelled set of singular values, sorted largest first,
    against its rank (as a fraction), on a log scale, with :data:`ISOMETRY_BAND` shaded.

    Args:
        spectra: panel title -> (label -> singular values); e.g. ``{"tanh, depth 50": {"xavier": s}}``.
            A curve may hold several seeds' values together.
        title: the figure's title.

    Returns:
        the Figure (not shown). Numerical zeros (:func:`nonzero_count`) are drawn on the floor of their panel, a
        tenth of its smallest other value.
    """
    if not isinstance(spectra, Mapping) or not spectra:
        raise ValueError("spectra must be a non-empty mapping of panel title -> {label: singular values}")
    panels = {}
    for name, curves in spectra.items():
        if not isinstance(curves, Mapping) or not curves:
            raise ValueError(f"spectra[{name!r}] must be a non-empty mapping of label -> singular values")
        panels[name] = {label: np.sort(_values(values))[::-1] for label, values in curves.items()}
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        nonzero = np.concatenate([v[v > ZERO_RTOL * v.max()] for v in curves.values() if v.max() > 0] or [np.ones(1)])
        floor, top = min(nonzero.min(), ISOMETRY_BAND[0]) / 10, max(nonzero.max(), ISOMETRY_BAND[1]) * 3
        ax.axhspan(*ISOMETRY_BAND, color="tab:green", alpha=0.12, label="[0.5, 2]")
        for label, values in curves.items():
            rank = (np.arange(values.size) + 0.5) / values.size
            shown = np.where(values > ZERO_RTOL * values.max(), values, floor)
            ax.plot(rank, shown, marker=".", markersize=3, linewidth=1, label=label)
        ax.set(title=name, yscale="log", ylim=(floor / 2, top), xlabel="rank / number of singular values")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("singular value of J")
    axes.flat[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
