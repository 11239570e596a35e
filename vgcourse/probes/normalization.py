"""What batch normalization does inside a network: pre-activations and its two modes.

A ``BatchNorm1d`` layer behaves differently in training and in evaluation. In ``train()`` mode
it normalizes each unit with the mean and variance of the *current batch* (and updates its
running averages); in ``eval()`` mode it uses those running averages instead. These functions
measure a model in either mode without changing it: the running averages and the mode are
restored afterwards.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from vgcourse.activations import ACTIVATION_MODULES
from vgcourse.models import layers as model_layers
from vgcourse.probes.layers import check_batch

MODES = ("train", "eval")
WHERE = ("activation", "linear")
"""``activation``: what each activation receives (after batch norm, if any);
``linear``: the linear map's output ``W h + b`` (before batch norm)."""

_NORMS = (nn.modules.batchnorm._BatchNorm,)


def _check(model: object, x: object, mode: object) -> None:
    check_batch(model, x)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")


@contextmanager
def _untouched(model: nn.Module, mode: str) -> Iterator[None]:
    """Run the block in ``mode``, then restore the model's mode and batch-norm buffers."""
    saved = {
        module: {name: buffer.clone() for name, buffer in module.named_buffers(recurse=False)}
        for module in model.modules()
        if isinstance(module, _NORMS)
    }
    was_training = model.training
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for module, buffers in saved.items():
                for name, value in buffers.items():
                    getattr(module, name).copy_(value)


@torch.no_grad()
def preactivations(
    model: nn.Module, x: Tensor, mode: str = "train", where: str = "activation"
) -> list[tuple[str, str, Tensor]]:
    """The pre-activations of every course layer on the batch ``x``, in forward order.

    Args:
        model: a network built from course layers (modules with ``linear`` and ``act``
            attributes, as in :func:`vgcourse.models.deep_mlp`).
        x: a batch of inputs.
        mode: ``"train"`` (batch norm uses this batch's statistics) or ``"eval"``
            (it uses its running averages).
        where: one of ``WHERE``: the activation's input, or the linear output before
            normalization. Without batch norm the two are the same.

    Returns:
        a list of ``(label, activation name, values)``, labels "layer 1", "layer 2", ...;
        ``values`` has shape ``(batch, units)``. The model is left exactly as it was.
    """
    _check(model, x, mode)
    if where not in WHERE:
        raise ValueError(f"unknown where {where!r}; choose one of {list(WHERE)}")
    layers = [
        layer for layer in model_layers(model)
        if layer.activation is not None and isinstance(layer.module, nn.Linear)
    ]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no course layers (modules with .linear and an .act "
            f"among {sorted(ACTIVATION_MODULES.values())}); build it with vgcourse.models.deep_mlp"
        )
    records: list[tuple[str, str, Tensor]] = []

    def hook_for(layer):
        label, kind = layer.name, ACTIVATION_MODULES[type(layer.activation)]
        if where == "linear":
            return layer.module.register_forward_hook(
                lambda module, inputs, output: records.append((label, kind, output.detach().cpu()))
            )
        return layer.activation.register_forward_hook(
            lambda module, inputs, output: records.append((label, kind, inputs[0].detach().cpu()))
        )

    with ExitStack() as stack:
        for layer in layers:
            stack.enter_context(hook_for(layer))  # a RemovableHandle removes its hook on exit
        with _untouched(model, mode):
            model(x.to(next(model.parameters()).device))
    return records


@torch.no_grad()
def train_eval_outputs(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """The model's outputs on ``x`` in ``train()`` mode and in ``eval()`` mode.

    For a network without batch norm (or dropout) the two are equal; with batch norm they
    differ unless the running averages happen to match the statistics of ``x``. The model's
    mode and running averages are restored afterwards.

    Raises:
        ValueError: for a batch of one example when the model has batch norm (a unit's
            variance over one example is undefined, so train mode cannot run).
    """
    _check(model, x, "train")
    has_norm = any(isinstance(m, _NORMS) for m in model.modules())
    if has_norm and len(x) < 2:
        raise ValueError(
            "train mode needs a batch of at least 2 examples when the model has batch norm "
            f"(got {len(x)}); use eval mode for single examples"
        )
    x = x.to(next(model.parameters()).device)
    outputs = []
    for mode in MODES:
        with _untouched(model, mode):
            outputs.append(model(x).detach().cpu())
    return outputs[0], outputs[1]
