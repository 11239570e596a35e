"""Random inputs for graded questions, drawn from a ``torch.Generator`` so a check is repeatable.

Every check draws fresh cases, so an answer that hard-codes the values of one run fails the next.
"""

from __future__ import annotations

import torch
from torch import Tensor


def random_int(generator: torch.Generator, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def random_float(generator: torch.Generator, low: float, high: float) -> float:
    """A uniform float in ``[low, high)``."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def random_shape(generator: torch.Generator, max_dims: int = 3, max_size: int = 7) -> tuple[int, ...]:
    """A random shape with 1 to ``max_dims`` dimensions, each of size 1 to ``max_size``."""
    return tuple(random_int(generator, 1, max_size) for _ in range(random_int(generator, 1, max_dims)))


def random_tensor(
    generator: torch.Generator,
    shape: tuple[int, ...],
    scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """A tensor of normal values with standard deviation ``scale``."""
    return (scale * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)


def random_dtype(generator: torch.Generator) -> torch.dtype:
    """float32 or float64, with equal chance: answers must keep working in both."""
    return torch.float32 if random_int(generator, 0, 1) == 0 else torch.float64


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """``rtol``/``atol`` for comparing results computed in ``dtype`` with a float64 reference."""
    return {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-7, "atol": 1e-10}
