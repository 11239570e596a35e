"""Dead ReLU units: which units output 0 on every example, and whether they come back.

A ReLU unit whose pre-activation is negative on every example of a batch outputs 0 and has
derivative 0 on all of them, so its incoming weights and bias get no gradient from that batch.
Dead on the *whole training set*, it gets no gradient from any batch; it can still revive when
the layers below it change what it receives. :class:`DeadUnitRecorder` watches that happen during
training, as an ``after_backward`` callback of ``vgcourse.training.train`` (or
``vgcourse.experiments.run``); :func:`revived_units` counts the units that came back.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from vgcourse.activations import DEAD_KINDS
from vgcourse.probes.layers import activation_outputs, check_batch
from vgcourse.validation import check_int


def dead_units(model: nn.Module, x: Tensor) -> np.ndarray:
    """Which units of each ReLU layer of ``model`` output exactly 0 on every example of ``x``.

    Args:
        model: a model whose activations are ReLU modules (a course ``deep_mlp`` with
            ``activation="relu"``), each layer of the same width.
        x: a batch of inputs.

    Returns:
        a bool array ``(layers, units)``, layer 1 first: ``True`` where the unit is dead on ``x``.

    Raises:
        ValueError: if the model has an activation other than ReLU (a Leaky ReLU or GELU unit is
            never exactly 0 on its negative side), no activation at all, or layers of
            different widths.
    """
    check_batch(model, x)
    outputs = activation_outputs(model, x)
    if not outputs:
        raise ValueError("model has no activation modules; dead units are defined for ReLU layers")
    kinds = sorted({kind for _, kind, _ in outputs} - DEAD_KINDS)
    if kinds:
        raise ValueError(f"dead units are defined for activations {sorted(DEAD_KINDS)}, "
                         f"whose output is 0 for every negative input; the model has {kinds}")
    widths = sorted({out.reshape(len(out), -1).shape[1] for _, _, out in outputs})
    if len(widths) != 1:
        raise ValueError(f"every ReLU layer must have the same width to stack their units, got widths {widths}")
    return np.stack([(out.reshape(len(out), -1) == 0).all(dim=0).numpy() for _, _, out in outputs])


def dead_fractions(model: nn.Module, x: Tensor) -> np.ndarray:
    """For each ReLU layer of ``model``, the fraction of its units that output 0 on every example
    of ``x`` (:func:`dead_units` averaged over units), layer 1 first."""
    return dead_units(model, x).mean(axis=1)


class DeadUnitRecorder:
    """Records :func:`dead_units` of the model on a fixed batch, every ``every`` training steps.

    Pass it as ``after_backward`` to ``vgcourse.training.train`` or ``vgcourse.experiments.run``:
    it is called as ``recorder(model, step)`` after each backward pass, before the optimizer
    step, so step ``t``'s record shows the weights that step ``t`` starts from.

    Attributes:
        x: the batch the units are judged on; pass the whole training set, on which dead means
            no gradient from any batch.
        every: record every ``every``-th step (0, every, 2·every, ...).
        steps: the steps recorded.
        masks: one :func:`dead_units` array per recorded step.
    """

    def __init__(self, x: Tensor, every: int = 1) -> None:
        if not isinstance(x, Tensor) or x.dim() < 2 or len(x) == 0:
            got = f"a tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a non-empty batch of inputs, a tensor of shape (batch, features), got {got}")
        self.x = x
        self.every = check_int(every, "every", minimum=1)
        self.steps: list[int] = []
        self.masks: list[np.ndarray] = []

    def __call__(self, model: nn.Module, step: int) -> None:
        if step % self.every == 0:
            self.steps.append(step)
            self.masks.append(dead_units(model, self.x))

    def history(self) -> np.ndarray:
        """The recorded masks as one bool array ``(recorded steps, layers, units)``."""
        if not self.masks:
            raise ValueError("nothing recorded yet: pass the recorder as after_backward and train")
        return np.stack(self.masks)


def revived_units(history: np.ndarray) -> np.ndarray:
    """For each layer, how many units were dead at some recorded step and alive at a later one.

    Args:
        history: a bool array ``(steps, layers, units)``, ``True`` where a unit is dead, in
            step order (:meth:`DeadUnitRecorder.history`).

    Returns:
        an int array ``(layers,)``.
    """
    history = np.asarray(history)
    if history.dtype != bool or history.ndim != 3 or history.shape[0] == 0:
        raise ValueError(f"history must be a bool array (steps, layers, units), got dtype {history.dtype} "
                         f"and shape {history.shape}")
    # dead at step t and alive at some step after t: alive at a later step than the first death
    steps = np.arange(history.shape[0])[:, None, None]
    first_dead = np.where(history, steps, history.shape[0]).min(axis=0)
    last_alive = np.where(~history, steps, -1).max(axis=0)
    return (last_alive > first_dead).sum(axis=1)


def ever_dead_units(history: np.ndarray) -> np.ndarray:
    """For each layer, how many units were dead at one recorded step or more of ``history``
    (a bool array ``(steps, layers, units)``)."""
    history = np.asarray(history)
    if history.dtype != bool or history.ndim != 3:
        raise ValueError(f"history must be a bool array (steps, layers, units), got dtype {history.dtype} "
                         f"and shape {history.shape}")
    return history.any(axis=0).sum(axis=1)
