"""Model factories: a deep MLP with every knob the course turns, and a small sequence model.

Layers are named ``layer1`` ... ``layerL`` so that per-layer plots read "layer 1 ... layer L";
``layer_names(model)`` gives those labels in forward order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vgcourse.activations import get_activation

INITS = ("default", "xavier", "he")
"""``default``: PyTorch's own Linear init (uniform, std 1/sqrt(3 fan_in));
``xavier``: Glorot & Bengio (2010), normal with std sqrt(2 / (fan_in + fan_out));
``he``: He et al. (2015), normal with std sqrt(2 / fan_in)."""

CELLS = ("rnn", "lstm", "gru")


def _check_positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


class Dense(nn.Module):
    """One layer: ``act(norm(linear(h)))``, plus ``h`` itself when ``residual``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str,
        batch_norm: bool = False,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and in_features != out_features:
            raise ValueError(
                f"a residual layer needs in_features == out_features, got {in_features} and {out_features}"
            )
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features) if batch_norm else nn.Identity()
        self.act = get_activation(activation).module()
        self.residual = residual

    def forward(self, h: Tensor) -> Tensor:
        out = self.act(self.norm(self.linear(h)))
        return h + out if self.residual else out


class DeepMLP(nn.Sequential):
    """A stack of :class:`Dense` layers ``layer1 ... layer{L-1}`` and a linear ``layer{L}``."""

    def __init__(self, *layers: nn.Module, in_features: int) -> None:
        super().__init__()
        for i, layer in enumerate(layers, start=1):
            self.add_module(f"layer{i}", layer)
        self.in_features = in_features

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"expected input of shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        return super().forward(x)


def _initialize(linear: nn.Linear, init: str, weight_scale: float) -> None:
    if init == "xavier":
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
    elif init == "he":
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
    with torch.no_grad():
        linear.weight.mul_(weight_scale)


def deep_mlp(
    in_features: int,
    out_features: int,
    depth: int,
    width: int,
    activation: str = "sigmoid",
    init: str = "default",
    batch_norm: bool = False,
    residual: bool = False,
    weight_scale: float = 1.0,
    seed: int = 0,
) -> DeepMLP:
    """Build an MLP with ``depth`` weight layers: ``depth - 1`` hidden layers and a linear output.

    Args:
        in_features: size of each input vector.
        out_features: number of outputs (classes, or 1 for regression).
        depth: number of weight layers L >= 1 (L = 1 is a linear model).
        width: units in every hidden layer.
        activation: one of ``vgcourse.activations.ACTIVATIONS``.
        init: one of ``INITS``.
        batch_norm: insert ``BatchNorm1d`` between each hidden linear map and its activation.
        residual: make hidden layers 2..L-1 residual, ``h + act(norm(linear(h)))``
            (layer 1 changes the width, so it cannot be).
        weight_scale: multiply every initial weight by this factor (> 0).
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        a :class:`DeepMLP`.
    """
    _check_positive_int(in_features, "in_features")
    _check_positive_int(out_features, "out_features")
    _check_positive_int(depth, "depth")
    _check_positive_int(width, "width")
    get_activation(activation)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    for flag, what in ((batch_norm, "batch_norm"), (residual, "residual")):
        if not isinstance(flag, bool):
            raise ValueError(f"{what} must be True or False, got {flag!r}")
    if isinstance(weight_scale, bool) or not isinstance(weight_scale, (int, float)):
        raise ValueError(f"weight_scale must be a positive number, got {weight_scale!r}")
    if not (weight_scale > 0 and math.isfinite(weight_scale)):
        raise ValueError(f"weight_scale must be a positive finite number, got {weight_scale!r}")
    _check_seed(seed)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i in range(depth - 1):
            layers.append(
                Dense(
                    in_features if i == 0 else width,
                    width,
                    activation,
                    batch_norm=batch_norm,
                    residual=residual and i > 0,
                )
            )
        layers.append(nn.Linear(in_features if depth == 1 else width, out_features))
        model = DeepMLP(*layers, in_features=in_features)
        for module in model.modules():
            if isinstance(module, nn.Linear):
                _initialize(module, init, float(weight_scale))
    return model


def layer_names(model: nn.Module) -> list[str]:
    """Readable labels ("layer 1", ...) of the weight layers of ``model``, in forward order.

    For a :class:`DeepMLP` these are "layer 1" ... "layer L". For any other model, the
    qualified names of its ``nn.Linear`` modules in registration order.
    """
    if isinstance(model, DeepMLP):
        return [f"layer {i}" for i in range(1, len(model) + 1)]
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` in the order :func:`layer_names` labels them."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


class SequenceModel(nn.Module):
    """A one-directional recurrent ``core`` (RNN, LSTM or GRU) read out at the last time step."""

    def __init__(self, core: nn.RNNBase, readout: nn.Linear) -> None:
        super().__init__()
        self.core = core
        self.readout = readout

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[2] != self.core.input_size:
            raise ValueError(
                f"expected input of shape (batch, time, {self.core.input_size}), got {tuple(x.shape)}"
            )
        states, _ = self.core(x)
        return self.readout(states[:, -1])


def sequence_model(
    input_size: int,
    hidden_size: int,
    output_size: int,
    cell: str = "lstm",
    num_layers: int = 1,
    seed: int = 0,
) -> SequenceModel:
    """Build a :class:`SequenceModel` whose core is a tanh ``rnn``, an ``lstm`` or a ``gru``.

    Inputs have shape ``(batch, time, input_size)``; the output ``(batch, output_size)`` is read
    from the hidden state after the last time step. PyTorch's default initialization is used.
    """
    _check_positive_int(input_size, "input_size")
    _check_positive_int(hidden_size, "hidden_size")
    _check_positive_int(output_size, "output_size")
    _check_positive_int(num_layers, "num_layers")
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {list(CELLS)}")
    _check_seed(seed)
    core_class = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        core = core_class(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        readout = nn.Linear(hidden_size, output_size)
    return SequenceModel(core, readout)
