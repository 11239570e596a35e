"""Model factories: a deep MLP with every knob the course turns, and a small sequence model.

Layers are named ``layer1`` ... ``layerL`` so that per-layer plots read "layer 1 ... layer L".
:func:`layers` is the one definition of which modules of any model are its layers, in what order
and under what names; the monitor and the probes all read it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from vgcourse.activations import ACTIVATION_MODULES, get_activation
from vgcourse.validation import check_int, check_number

INITS = ("default", "xavier", "he", "lecun")
"""``default``: PyTorch's own Linear init (uniform, std 1/sqrt(3 fan_in));
``xavier``: Glorot & Bengio (2010), normal with std sqrt(2 / (fan_in + fan_out));
``he``: He et al. (2015), normal with std sqrt(2 / fan_in);
``lecun``: LeCun et al. (1998), normal with std sqrt(1 / fan_in), the init of SELU's
self-normalizing networks (Klambauer et al. 2017). All but ``default`` start the biases at 0."""

CELLS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu")
"""A plain ``rnn`` core's choices (``nn.RNN``'s); the gated cells are tanh only."""


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
    elif init == "lecun":  # gain 1: std 1/sqrt(fan_in), what PyTorch's docs advise for SELU
        nn.init.kaiming_normal_(linear.weight, nonlinearity="linear")
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
        init: one of ``INITS``; for orthogonal weights apply ``vgcourse.initialization.orthogonal_``
            to the built model.
        batch_norm: insert ``BatchNorm1d`` between each hidden linear map and its activation.
        residual: make hidden layers 2..L-1 residual, ``h + act(norm(linear(h)))``
            (layer 1 changes the width, so it cannot be).
        weight_scale: multiply every initial weight by this factor (> 0).
        seed: the weights depend only on this seed; global random state is left untouched.

    Returns:
        a :class:`DeepMLP`.
    """
    sizes = {"in_features": in_features, "out_features": out_features, "depth": depth, "width": width}
    for what, value in sizes.items():
        check_int(value, what, minimum=1)
    get_activation(activation)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    for flag, what in ((batch_norm, "batch_norm"), (residual, "residual")):
        if not isinstance(flag, bool):
            raise ValueError(f"{what} must be True or False, got {flag!r}")
    check_number(weight_scale, "weight_scale", 0)
    check_int(seed, "seed", minimum=0)

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


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a model, as :func:`layers` finds it.

    Attributes:
        name: "layer 1" ... "layer L" in a course :class:`DeepMLP`; otherwise the module's
            qualified name inside any ``torch.compile`` / DDP wrapper (:func:`unwrapped`), with the
            module's class when it ends in an index (``"3 (Linear)"`` in an ``nn.Sequential``),
            plus ``.<parameter>`` for a parameter not called ``weight`` (``.in_proj_weight``,
            ``.weight_hh_l0``).
        module: the module that owns ``weight`` (an ``nn.Linear`` in a course MLP).
        weight: the layer's weight matrix.
        activation: the activation module that belongs to the layer (a course layer's ``act``:
            a module with attributes ``linear`` and ``act``), or ``None``.
    """

    name: str
    module: nn.Module
    weight: nn.Parameter
    activation: nn.Module | None = None


def layers(model: nn.Module) -> list[Layer]:
    """The layers of ``model`` in registration order (forward order for a course model).

    A *layer* is a parameter with two or more dimensions, with the module that owns it: the
    ``weight`` of a ``Linear``, ``Conv`` or ``Embedding``, and every other matrix too, such as
    attention's ``in_proj_weight`` (Q, K and V) or each ``weight_ih_l{k}`` and ``weight_hh_l{k}``
    of an RNN, LSTM or GRU. Biases and normalization scales (one dimension) are not layers. A
    weight shared by several modules counts once.
    """
    model = unwrapped(model)
    course: dict[nn.Module, str] = {}
    if isinstance(model, DeepMLP):
        linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
        course = {module: f"layer {i}" for i, module in enumerate(linears, start=1)}
    activation_of = {
        module.linear: module.act
        for module in model.modules()
        if isinstance(getattr(module, "linear", None), nn.Module)
        and type(getattr(module, "act", None)) in ACTIVATION_MODULES
    }
    found, seen = [], set()
    for qualname, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if id(param) in seen or param.dim() < 2:
                continue
            seen.add(id(param))
            if pname != "weight":
                name = f"{qualname}.{pname}".lstrip(".")
            else:
                name = course.get(module) or qualname or type(module).__name__
                if qualname.rsplit(".", 1)[-1].isdigit() and module not in course:  # a Sequential's "3"
                    name = f"{qualname} ({type(module).__name__})"
            found.append(Layer(name, module, param, activation_of.get(module)))
    return found


LayerChoice = str | type[nn.Module] | Sequence[str | type[nn.Module]] | None
"""Layers to include or exclude: a name pattern, an nn.Module class, or a list of them."""


def _matches(layer: Layer, choices: list) -> list[bool]:
    return [isinstance(layer.module, c) if isinstance(c, type) else fnmatch.fnmatchcase(layer.name, c)
            for c in choices]


def chosen_layers(found: list[Layer], include: LayerChoice, exclude: LayerChoice) -> list[Layer]:
    """The layers of ``found`` that ``include`` picks (all if ``None``) and ``exclude`` does not;
    each a name pattern (``fnmatch``: ``"encoder.*"``) or module class, or a list of them."""
    chosen = found
    for what, choice in (("include", include), ("exclude", exclude)):
        if choice is None:
            continue
        choices = [choice] if isinstance(choice, (str, type)) else list(choice) if isinstance(choice, (list, tuple)) else None
        if not choices or not all(isinstance(c, str) or (isinstance(c, type) and issubclass(c, nn.Module))
                                  for c in choices):
            raise TypeError(f"{what} must be a layer-name pattern, an nn.Module class, or a list of them; "
                            f"got {choice!r}")
        hits = [_matches(layer, choices) for layer in found]
        unused = [c for i, c in enumerate(choices) if not any(hit[i] for hit in hits)]
        if unused:
            names = [layer.name for layer in found]
            raise ValueError(f"{what} {unused} matched no trainable layer; the layers are {names}")
        keep = what == "include"
        chosen = [layer for layer, hit in zip(found, hits) if any(hit) == keep and layer in chosen]
    if not chosen:
        raise ValueError(f"include={include!r} and exclude={exclude!r} leave no layer to monitor")
    return chosen


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside ``torch.compile``'s wrapper and DDP's or DataParallel's (their layers are its
    layers, without the ``_orig_mod.`` or ``module.`` in their names)."""
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if inner is None and isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def layer_names(model: nn.Module) -> list[str]:
    """The names of :func:`layers` of ``model``: "layer 1" ... "layer L" for a :class:`DeepMLP`."""
    return [layer.name for layer in layers(model)]


def linear_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of :func:`layers` of ``model``, in the order :func:`layer_names` names them
    (the ``nn.Linear`` maps of a course MLP)."""
    return [layer.module for layer in layers(model)]


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
    nonlinearity: str = "tanh",
) -> SequenceModel:
    """Build a :class:`SequenceModel` whose core is a plain ``rnn``, an ``lstm`` or a ``gru``.

    Inputs have shape ``(batch, time, input_size)``; the output ``(batch, output_size)`` is read
    from the hidden state after the last time step. PyTorch's default initialization is used
    (``vgcourse.recurrent_init`` changes it). ``nonlinearity`` is the plain RNN's, ``"tanh"`` or
    ``"relu"``; gated cells take only ``"tanh"``.
    """
    sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size, "num_layers": num_layers}
    for what, value in sizes.items():
        check_int(value, what, minimum=1)
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {list(CELLS)}")
    check_int(seed, "seed", minimum=0)
    if nonlinearity not in NONLINEARITIES or (cell != "rnn" and nonlinearity != "tanh"):
        allowed = list(NONLINEARITIES) if cell == "rnn" else ["tanh"]
        raise ValueError(f"nonlinearity {nonlinearity!r} is not available for cell {cell!r}; choose one of {allowed}")
    core_class = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        core = core_class(input_size, hidden_size, num_layers=num_layers, batch_first=True, **options)
        readout = nn.Linear(hidden_size, output_size)
    return SequenceModel(core, readout)
