"""The course's shared experiment: one network set-up, trained and watched, changed one knob at a time.

Notebook 03 trains ``BASELINE`` — a 10-layer sigmoid MLP on the digits that does not learn.
Every fix notebook runs ``dataclasses.replace(BASELINE, <one change>)`` with the same data,
depth, budget and seed, so any difference comes from that one change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable

from torch import nn

from vgcourse.data import Split, digits
from vgcourse.models import DeepMLP, deep_mlp
from vgcourse.monitor import EVERYTHING, GradientMonitor, MonitorOptions
from vgcourse.training import History, train


@dataclass(frozen=True)
class Setup:
    """A network and its training budget. Field names match ``deep_mlp`` and ``train``."""

    depth: int = 10
    width: int = 64
    activation: str = "sigmoid"
    init: str = "default"
    batch_norm: bool = False
    residual: bool = False
    weight_scale: float = 1.0
    epochs: int = 20
    lr: float = 0.3
    batch_size: int = 32
    optimizer: str = "sgd"
    seed: int = 0

    def changed(self, **changes: Any) -> Setup:
        """A copy with ``changes`` applied; unknown field names are an error."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown setup field(s) {unknown}; choose from {[f.name for f in fields(self)]}")
        return replace(self, **changes)


BASELINE = Setup()
"""The failing set-up of notebook 03: 10 sigmoid layers, default init, SGD lr 0.3, 20 epochs."""

RUN_MONITOR = EVERYTHING.changed(hist_every=140)
"""What :func:`run` records by default: everything, with seven histograms over the baseline's
860 steps (43 batches of 32 per epoch of the 1,348 training digits)."""

_MODEL_FIELDS = ("depth", "width", "activation", "init", "batch_norm", "residual", "weight_scale", "seed")
_TRAIN_FIELDS = ("epochs", "lr", "batch_size", "optimizer", "seed")


@dataclass
class Run:
    """A trained model with its training history and the monitor that watched it.

    A run whose loss became NaN or infinite is still a ``Run``: ``diverged`` is true and the
    history and monitor hold everything up to the blow-up.
    """

    setup: Setup
    model: nn.Module
    history: History
    monitor: GradientMonitor

    @property
    def diverged(self) -> bool:
        """Whether training stopped because the loss became NaN or infinite."""
        return self.history.diverged


def build_model(setup: Setup, data: Split) -> DeepMLP:
    """The untrained model ``setup`` describes, sized for ``data``."""
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be a vgcourse.experiments.Setup, got {type(setup).__name__}")
    if data.n_classes is None:
        raise ValueError("the course experiment is a classification task; data has float targets")
    options = {name: getattr(setup, name) for name in _MODEL_FIELDS}
    return deep_mlp(data.n_features, data.n_classes, **options)


def run(
    setup: Setup = BASELINE,
    data: Split | None = None,
    after_backward: Callable[[nn.Module, int], None] | None = None,
    on_divergence: str = "stop",
    progress: bool = True,
    options: MonitorOptions | None = None,
    **monitor_options: Any,
) -> Run:
    """Build, train and monitor the model ``setup`` describes.

    Args:
        setup: the network and budget; default the failing ``BASELINE``.
        data: default ``digits(seed=setup.seed)``.
        after_backward: passed to :func:`~vgcourse.training.train` (e.g. a gradient clipper).
        on_divergence: ``"stop"`` (default) returns a run that diverged, flagged
            (``Run.diverged``); ``"raise"`` raises :class:`~vgcourse.training.TrainingDiverged`.
        progress: show a progress bar over epochs (:func:`~vgcourse.training.epoch_bar`).
        options: what the monitor records, a :class:`~vgcourse.monitor.MonitorOptions` (e.g.
            ``vgcourse.monitor.DIAGNOSIS``); default :data:`RUN_MONITOR`.
        **monitor_options: changes to ``options``, e.g. ``histograms=False``.
    """
    data = data if data is not None else digits(seed=setup.seed)
    model = build_model(setup, data)
    with GradientMonitor(model, options or RUN_MONITOR, **monitor_options) as monitor:
        options = {name: getattr(setup, name) for name in _TRAIN_FIELDS}
        history = train(model, data, progress=progress, after_backward=after_backward,
                        on_divergence=on_divergence, **options)
    return Run(setup, model, history, monitor)


def describe(setup: Setup) -> str:
    """The fields where ``setup`` differs from ``BASELINE``, e.g. ``"activation=relu, init=he"``."""
    base = asdict(BASELINE)
    changes = [f"{k}={v}" for k, v in asdict(setup).items() if base[k] != v]
    return ", ".join(changes) if changes else "baseline"
