"""Gradient clipping as a training-loop callback that also records the gradient norm it saw.

    clipper = clip_by_norm(1.0)
    train(model, data, after_backward=clipper)
    clipper.norms      # total gradient norm of every step, measured *before* clipping

Clipping itself is PyTorch's: ``torch.nn.utils.clip_grads_with_norm_`` rescales the whole
gradient when its norm (``get_total_norm``) exceeds a threshold (Pascanu, Mikolov & Bengio,
2013) — together, what ``clip_grad_norm_`` does; ``clip_grad_value_`` caps every entry
separately. Both only ever make a gradient *smaller*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils import clip_grad_value_, clip_grads_with_norm_, get_total_norm

from vgcourse.validation import check_number

MODES = ("none", "norm", "value")


def _check_threshold(value: object, what: str) -> float:
    return check_number(value, what, 0)


def gradients(model: nn.Module) -> list[Tensor]:
    """The ``.grad`` tensors of ``model``'s parameters that have one, in parameter order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [p.grad for p in model.parameters() if p.grad is not None]


def flat_gradient(model: nn.Module) -> Tensor:
    """All of ``model``'s parameter gradients concatenated into one detached 1-D vector (a copy).

    Raises:
        ValueError: when no parameter has a gradient yet (call ``backward()`` first).
    """
    grads = gradients(model)
    if not grads:
        raise ValueError("model has no gradients; call loss.backward() first")
    return torch.cat([g.detach().reshape(-1) for g in grads])


@torch.no_grad()
def total_norm(model: nn.Module) -> float:
    """The L2 norm of all of ``model``'s parameter gradients taken together (0.0 if none)."""
    grads = gradients(model)
    if not grads:
        return 0.0
    return float(get_total_norm(grads))


@dataclass
class Clipper:
    """An ``after_backward(model, step)`` callback for :func:`~vgcourse.training.train`.

    At every call it records the total gradient norm (before clipping) in ``norms``, then clips
    the gradients in place according to ``mode``: ``"none"`` leaves them alone, ``"norm"``
    rescales them to norm ``threshold`` when larger, ``"value"`` caps every entry at
    ``±threshold``. Build one with :func:`clip_by_norm`, :func:`clip_by_value` or
    :func:`record_only`.
    """

    mode: str
    threshold: float = math.inf
    norms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown clipping mode {self.mode!r}; choose one of {list(MODES)}")
        if self.mode != "none":
            self.threshold = _check_threshold(self.threshold, "threshold")

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int = 0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        # torch's clipping functions take the *parameters* and act on their ``.grad``
        params = [p for p in model.parameters() if p.grad is not None]
        if not params:
            raise ValueError("model has no gradients; the clipper must run after loss.backward()")
        norm = get_total_norm([p.grad for p in params])  # before clipping
        if self.mode == "norm":
            clip_grads_with_norm_(params, self.threshold, norm)  # = clip_grad_norm_(params, threshold)
        elif self.mode == "value":
            clip_grad_value_(params, self.threshold)
        self.norms.append(float(norm))

    def clipped_fraction(self) -> float:
        """Fraction of recorded steps whose pre-clip norm exceeded ``threshold`` (NaN if none).

        For ``"norm"`` mode these are exactly the steps that were rescaled.
        """
        if not self.norms:
            return math.nan
        return sum(n > self.threshold for n in self.norms) / len(self.norms)


def clip_by_norm(max_norm: float) -> Clipper:
    """A callback that rescales the whole gradient to L2 norm ``max_norm`` whenever it is larger.

    Uses ``torch.nn.utils.clip_grads_with_norm_`` (what ``clip_grad_norm_`` does): the direction of the gradient is kept.

    Args:
        max_norm: the largest total gradient norm allowed through, ``0 < max_norm < inf``.

    Returns:
        a :class:`Clipper` whose ``norms`` list fills with the pre-clip norm of every step.
    """
    return Clipper("norm", _check_threshold(max_norm, "max_norm"))


def clip_by_value(clip_value: float) -> Clipper:
    """A callback that caps every gradient entry at ``±clip_value``.

    Uses ``torch.nn.utils.clip_grad_value_``: each entry is clipped on its own, so the direction
    of the gradient changes whenever some entries are capped and others are not.

    Args:
        clip_value: the largest absolute value of a gradient entry, ``0 < clip_value < inf``.

    Returns:
        a :class:`Clipper` whose ``norms`` list fills with the pre-clip norm of every step.
    """
    return Clipper("value", _check_threshold(clip_value, "clip_value"))


def record_only() -> Clipper:
    """A callback that records the total gradient norm of every step and clips nothing."""
    return Clipper("none")
