"""L2 norms of many tensors at once: fused, right for tiny and huge values, whole for sharded ones.

    norms = l2_norms([p.grad for p in params])     # float64 tensor, on the tensors' device

What the gradient monitor measures with; it runs inside the user's training step, so it is fast
(one fused call, no host sync on an accelerator) and never raises for a tensor it cannot measure.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

__all__ = ["FLOAT32_SAFE", "dense_values", "each", "is_sharded", "l2_norms"]

FLOAT32_SAFE = (1e-18, 1e18)
"""Norms a float32 sum of squares gets right: its squares stay normal numbers (float32's range is
about 1e-38 to 3e38). Outside it, :func:`l2_norms` takes the norm again in float64."""


def is_sharded(tensor: Tensor) -> bool:
    """Whether ``tensor`` is a ``DTensor`` (FSDP2's sharded parameters and gradients)."""
    if not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def _whole(norms: list[Tensor]) -> list[Tensor]:
    # the norm of a sharded tensor is a DTensor of each rank's part; full_tensor() combines them
    # (a collective: every rank measures at the same point, as in backward)
    return [norm.full_tensor() if is_sharded(norm) else norm for norm in norms]


def dense_values(grad: Tensor) -> Tensor:
    """``grad``, or for a sparse gradient (``nn.Embedding(sparse=True)``) the values it holds:
    the same L2 norm and the same histogram of the entries that exist."""
    return grad.coalesce().values() if grad.is_sparse else grad


def l2_norms(tensors: list[Tensor], on_error: Callable[[int, Exception], None] | None = None) -> Tensor:
    """float64 L2 norm of each of ``tensors`` (all on one device), as one tensor.

    One fused call; on a CPU in float32, taken again in float64 where that under- or overflows
    (a float64 copy of everything costs 5x). Where the fused call fails (a tensor type its kernel
    does not support), one tensor at a time: one that still fails reads NaN, and
    ``on_error(index, error)`` is called.
    """
    device = tensors[0].device
    try:
        if device.type != "cpu":  # a fused float64 norm costs little on an accelerator
            return torch.stack(_whole(torch._foreach_norm(tensors, 2, dtype=torch.float64)))
        norms = torch.stack(_whole(torch._foreach_norm(tensors, 2))).double()
        again = ((norms < FLOAT32_SAFE[0]) | (norms > FLOAT32_SAFE[1])).nonzero().flatten().tolist()
        if again:
            redone = torch._foreach_norm([tensors[i] for i in again], 2, dtype=torch.float64)
            norms[again] = torch.stack(_whole(redone))
        return norms
    except Exception:
        pass
    norms = []
    for index, tensor in enumerate(tensors):
        try:
            norms.append(_whole([torch.linalg.vector_norm(tensor, dtype=torch.float64)])[0].to(device))
        except Exception as error:
            if on_error is not None:
                on_error(index, error)
            norms.append(torch.full((), math.nan, dtype=torch.float64, device=device))
    return torch.stack(norms)


def each(method: str, targets: list[Tensor], others: list[Tensor]) -> None:
    """``target.<method>(other)`` for each pair (``"copy_"``, ``"sub_"``, ``"add_"``): one fused
    call, or one at a time for tensors the fused kernels do not support (a sharded ``DTensor``)."""
    if is_sharded(targets[0]):
        for target, other in zip(targets, others):
            getattr(target, method)(other)
    else:
        getattr(torch, f"_foreach_{method}")(targets, others)
