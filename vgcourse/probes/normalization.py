"""What batch normalization does inside a network: pre-activations, its two modes, its backward gain.

A ``BatchNorm1d`` layer behaves differently in training and in evaluation. In ``train()`` mode
it normalizes each unit with the mean and variance of the *current batch* (and updates its
running averages); in ``eval()`` mode it uses those running averages instead. These functions
measure a model in either mode without changing it: the running averages and the mode are
restored afterwards. :func:`norm_backward_gains` measures by how much each batch-norm layer
scales the gradient on its way back (about ``γ/σ_B``).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from vgcourse.activations import ACTIVATION_MODULES
from vgcourse.models import layers as model_layers
from vgcourse.probes.layers import check_batch
from vgcourse.training import task_loss

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
        ValueError: for a batch of one example when the model has batch norm: the batch mean
            is then the example itself, every normalized value ``z - μ_B`` is 0 and each unit
            would output β whatever the input (PyTorch raises "Expected more than 1 value per
            channel when training").
    """
    _check(model, x, "train")
    has_norm = any(isinstance(m, _NORMS) for m in model.modules())
    if has_norm and len(x) < 2:
        raise ValueError(
            "train mode needs a batch of at least 2 examples when the model has batch norm "
            f"(got {len(x)}): one example is its own batch mean, so every normalized value would be 0; "
            "use eval mode for single examples"
        )
    x = x.to(next(model.parameters()).device)
    outputs = []
    for mode in MODES:
        with _untouched(model, mode):
            outputs.append(model(x).detach().cpu())
    return outputs[0], outputs[1]


def norm_backward_gains(model: nn.Module, x: Tensor, y: Tensor) -> list[float]:
    """By how much each batch-norm layer scales the gradient on its way back, in train mode.

    For every ``BatchNorm1d`` (or other ``_BatchNorm``) in ``model``, in forward order, the ratio
    ``‖∂loss/∂z‖ / ‖∂loss/∂ẑ‖`` of the gradient reaching the layer's input ``z`` to the one
    reaching its output ``ẑ``, on the batch ``(x, y)`` with the course's task loss. Dividing by
    the batch spread ``σ_B`` multiplies the gradient by ``γ/σ_B``; removing the batch mean (and
    the part along ``ẑ``) takes a little off again.

    Args:
        model: a network with batch-norm layers (``deep_mlp(..., batch_norm=True)``).
        x: a batch of at least two inputs.
        y: its targets.

    Returns:
        one gain per batch-norm layer. The model's mode, running averages and ``.grad`` fields
        are left as they were. Norms are taken in float64.

    Raises:
        ValueError: if the model has no batch norm, or the batch has fewer than two examples.
    """
    check_batch(model, x, y)
    norms = [module for module in model.modules() if isinstance(module, _NORMS)]
    if not norms:
        raise ValueError(f"{type(model).__name__} has no batch-norm layer; build it with batch_norm=True")
    if len(x) < 2:
        raise ValueError(f"train mode needs a batch of at least 2 examples, got {len(x)}")
    seen: dict[nn.Module, tuple[Tensor, Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        seen[module] = (inputs[0], output)

    device = next(model.parameters()).device
    with ExitStack() as stack:
        for module in norms:
            stack.enter_context(module.register_forward_hook(record))
        with _untouched(model, "train"):  # the backward pass too: it needs the buffers unmodified
            loss = task_loss(model(x.to(device)), y.to(device))
            pairs = [seen[module] for module in norms]
            grads = torch.autograd.grad(loss, [t for pair in pairs for t in pair])
    size = [float(torch.linalg.vector_norm(g, dtype=torch.float64)) for g in grads]
    return [size[2 * i] / size[2 * i + 1] for i in range(len(pairs))]
