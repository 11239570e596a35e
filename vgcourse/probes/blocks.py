"""One-batch measurements of a :class:`~vgcourse.norm_blocks.BlockStack` and of LayerNorm itself.

- :func:`block_gradient_norms`: how much gradient each block's weights receive;
- :func:`stream_gradient_norms`: the gradient reaching each vector of the residual stream;
- :func:`stream_jacobian`: the Jacobian of the blocks' map ``x_0 → x_L`` at one example;
- :func:`layer_norm_gain`: by how much a LayerNorm scales a gradient on its way back.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vgcourse.norm_blocks import BlockStack
from vgcourse.probes.layers import check_batch


def _check(model: object, x: object, y: object = None) -> None:
    if not isinstance(model, BlockStack):
        raise TypeError(f"model must be a vgcourse.norm_blocks.BlockStack, got {type(model).__name__}")
    check_batch(model, x, y)


def _norm(tensors: list[Tensor]) -> float:
    return math.sqrt(sum(float(torch.linalg.vector_norm(t, dtype=torch.float64)) ** 2 for t in tensors))


def block_gradient_norms(model: BlockStack, x: Tensor, y: Tensor) -> list[float]:
    """For each block, block 1 first, the L2 norm of the cross-entropy loss's gradient with respect
    to the block's two weight matrices (``linear1`` and ``linear2`` together), summed in float64.

    One forward and backward pass on the batch ``(x, y)``; the model's ``.grad`` fields are left
    as they were.
    """
    _check(model, x, y)
    weights = [w for block in model.blocks for w in (block.linear1.weight, block.linear2.weight)]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
    return [_norm(list(grads[2 * i:2 * i + 2])) for i in range(len(model.blocks))]


def stream_gradient_norms(model: BlockStack, x: Tensor, y: Tensor) -> list[float]:
    """``‖∂loss/∂x_l‖`` for the residual stream ``x_0`` (after ``embed``) ... ``x_L``, summed in
    float64 over the batch ``(x, y)`` (cross-entropy, averaged over the batch)."""
    _check(model, x, y)
    states = model.stream(x)
    loss = F.cross_entropy(model.head(model.final(states[-1])), y)
    return [_norm([g]) for g in torch.autograd.grad(loss, states)]


def stream_jacobian(model: BlockStack, x: Tensor) -> Tensor:
    """The ``(width, width)`` Jacobian ``∂x_L/∂x_0`` of the blocks at one example ``x`` (a vector
    of ``in_features``): the product of the blocks' Jacobians, row ``i`` for output ``i``."""
    if not isinstance(model, BlockStack):
        raise TypeError(f"model must be a vgcourse.norm_blocks.BlockStack, got {type(model).__name__}")
    if not isinstance(x, Tensor) or x.shape != (model.embed.in_features,):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be one example, a tensor of shape ({model.embed.in_features},), got {shape}")

    def blocks(h: Tensor) -> Tensor:
        for block in model.blocks:
            h = block(h)
        return h

    with torch.no_grad():
        start = model.embed(x)
    return torch.autograd.functional.jacobian(blocks, start)


def layer_norm_gain(norm: nn.LayerNorm, x: Tensor) -> float:
    """The backward gain of ``norm`` at the inputs ``x``: the root mean square, over the rows of
    ``x`` and over all directions, of ``‖Jᵀg‖ / ‖g‖`` for the Jacobian ``J`` at each row.

    That is ``sqrt(mean over rows of ‖J‖²_F / d)``: what a random gradient ``g`` of any size is
    multiplied by on its way back through ``norm`` (in mean square).

    Args:
        norm: an ``nn.LayerNorm`` over the last dimension, of size ``d``.
        x: a batch ``(n, d)`` of inputs.

    Returns:
        the gain, a positive number: about ``sqrt((d - 2) / d) / std(x)`` for scale 1.
    """
    if not isinstance(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
        raise TypeError(f"norm must be an nn.LayerNorm over one dimension, got {norm!r}")
    d = norm.normalized_shape[0]
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != d or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty batch of shape (n, {d}), got {shape}")
    # row r of the output depends on row r of x alone, so the Jacobian of the column sums holds
    # every row's Jacobian: jacobian[i, r, j] = ∂out[r, i] / ∂x[r, j]
    jacobians = torch.autograd.functional.jacobian(lambda h: norm(h).sum(0), x.detach())  # (d, n, d)
    return float(jacobians.double().pow(2).sum(dim=(0, 2)).mean().div(d).sqrt())
