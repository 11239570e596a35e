"""Watch a model while it trains: per-layer gradient norms, update sizes, activations, histograms.

    with GradientMonitor(model) as mon:            # or GradientMonitor(model, NORMS_ONLY)
        train(model, data, epochs=5)
    mon.grad_norms()          # numpy array (steps, layers), layers in forward order

``vgcourse.diagnosis.diagnose(mon)`` turns the records into a verdict. The layers are those of
``vgcourse.models.layers(model)``. A *step* is a call to ``step()`` of any ``torch.optim``
optimizer holding the model's parameters, caught with PyTorch's global optimizer hooks, so any
training loop works unchanged; steps with no forward pass of the model between them (two
optimizers for two parts of it, or an optimizer whose ``step()`` calls an inner one) are one step.
"""

from __future__ import annotations

import math
import warnings
import weakref
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook as _register_post_hook
from torch.optim.optimizer import register_optimizer_step_pre_hook as _register_pre_hook
from torch.overrides import TorchFunctionMode

from vgcourse.activations import (DEAD_KINDS, FUNCTIONAL_ACTIVATIONS, OUTPUT_RANGES, SATURATION_MARGIN, activation_kind,
                                  saturated_mask)
from vgcourse.models import LayerChoice, chosen_layers, layers, unwrapped
from vgcourse.records import HISTOGRAM_KINDS, Histogram, MonitorRecords, RecordQueries
from vgcourse.step_table import StepTable
from vgcourse.tensor_norms import dense_values, each, l2_norms
from vgcourse.validation import check_choice, check_int, check_number

__all__ = ["DIAGNOSIS", "EVERYTHING", "NORMS_ONLY", "GradientMonitor", "MonitorOptions"]

_MEAN, _STD, _SATURATED, _DEAD = range(4)  # columns of a step's activation statistics


@dataclass(frozen=True)
class MonitorOptions:
    """What a :class:`GradientMonitor` records; the presets below name the usual choices.

    Attributes:
        functional_activations: also see activations called as functions in a ``forward``
            (``F.relu(x)``, ``x.tanh()``; ``vgcourse.activations.FUNCTIONAL_ACTIVATIONS``),
            by watching every torch function the model's forward calls (a
            ``TorchFunctionMode``): a Python call per function (a step of the benchmark's
            20-layer MLP took 1.3x as long as with the defaults, in one run), not under
            ``torch.compile``.
        every: record optimizer steps 0, ``every``, ``2 * every``, ... only; the steps between
            cost nothing (not measured at all, so a step ``GradScaler`` skips among them is not
            seen either).
        history: the most steps kept (``None``: all). A longer run keeps every other recorded
            step and doubles ``every`` each time it reaches the limit: evenly spaced steps over
            the whole run. Rows live on the CPU (28 bytes per layer and step) with histograms;
            with the defaults a 100-layer model grew 57 MB over 10,000 steps, and no more
            after (``benchmarks/monitor_memory.py``).
        hist_every: record histograms at every ``hist_every``-th recorded step (steps 0,
            ``hist_every * every``, ...).
        bins: bins per histogram. Gradient bins span ``[-max|g|, max|g|]`` of that layer at
            that step (symmetric, so zero sits at the centre); activation bins span the output
            range of sigmoid and tanh (``vgcourse.activations.OUTPUT_RANGES``), and the
            observed [min, max] otherwise.
        saturation_margin: a sigmoid/tanh output within this distance of an asymptote counts
            as saturated (see ``vgcourse.activations.saturated_mask``).
        histograms: record gradient and activation histograms.
        activations: record per-step activation statistics (else they read NaN).
        update_ratios: record ``‖Δw‖ / ‖w‖`` (else NaN).
        ratio_every: measure the update ratios at the recorded steps that are multiples of
            ``ratio_every`` only (NaN at the others). A measured step copies every monitored weight before the step (as much
            memory again as those weights, held until the next step) and makes three passes
            over them: 8 % of a step of a 20-layer MLP on a CPU at ``ratio_every=1``.
    """

    hist_every: int = 50
    bins: int = 40
    saturation_margin: float = SATURATION_MARGIN
    histograms: bool = True
    activations: bool = True
    update_ratios: bool = True
    ratio_every: int = 10
    functional_activations: bool = False
    every: int = 1
    history: int | None = 10_000

    def __post_init__(self) -> None:
        check_int(self.hist_every, "hist_every", minimum=1)
        check_int(self.ratio_every, "ratio_every", minimum=1)
        check_int(self.every, "every", minimum=1)
        if self.history is not None:
            check_int(self.history, "history", minimum=2)
        check_int(self.bins, "bins", minimum=1)
        check_number(self.saturation_margin, "saturation_margin", 0, 0.5)
        for what in ("histograms", "activations", "update_ratios", "functional_activations"):
            if not isinstance(getattr(self, what), bool):
                raise ValueError(f"{what} must be True or False, got {getattr(self, what)!r}")

    def changed(self, **changes: Any) -> MonitorOptions:
        """A copy with ``changes`` applied; unknown option names are an error."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown monitor option(s) {unknown}; choose from {list(self.__dataclass_fields__)}")
        return replace(self, **changes)


EVERYTHING = MonitorOptions()
"""Every statistic, histograms every 50 steps, update ratios every 10: for plots of a single run."""
DIAGNOSIS = MonitorOptions(histograms=False, update_ratios=False)
"""Gradient norms and activation statistics: what ``diagnose`` reads, at a few percent overhead."""
NORMS_ONLY = MonitorOptions(histograms=False, activations=False, update_ratios=False)
"""Per-step gradient norms only: the cheapest, for the first/last ratio."""


class _FunctionalActivations(TorchFunctionMode):
    """While the model's forward runs: each activation called as a function, to the monitor."""

    def __init__(self, ref: weakref.ref) -> None:
        super().__init__()
        self._ref = ref

    def __torch_function__(self, func: Callable, types: object, args: tuple = (), kwargs: dict | None = None) -> object:
        output = func(*args, **(kwargs or {}))  # this mode is off while it runs: no recursion
        kind = FUNCTIONAL_ACTIVATIONS.get(func)
        monitor = self._ref()
        if kind is not None and monitor is not None and not monitor._inside_activation:
            try:
                monitor._activation_ran(kind, None, None, args, output)
            except Exception as error:  # never stop the user's forward pass
                monitor._skipped("a functional activation", error)
        return output


def _weak_hook(ref: weakref.ref, method: str, *bound: object) -> Callable[..., None]:
    # A weak reference: neither torch's global optimizer hooks nor the model's module hooks may
    # keep a forgotten monitor alive (its finalizer then removes them all).
    def hook(*args: object) -> None:
        monitor = ref()
        if monitor is not None:
            try:
                getattr(monitor, method)(*bound, *args)
            except Exception as error:  # the monitor must never stop the user's training
                monitor._skipped(f"its {method.strip('_').replace('_', ' ')} hook", error)

    return hook


class GradientMonitor(RecordQueries):
    """Records per-layer gradient and activation statistics at every optimizer step of ``model``.

    Args:
        model: any ``torch.nn.Module`` with at least one layer (see the module docstring).
        options: what to record, a :class:`MonitorOptions` (default :data:`EVERYTHING`).
        **changes: options to change from ``options``, e.g. ``hist_every=140``.

    ``include`` and ``exclude`` choose layers: a name pattern (``fnmatch``, e.g. ``"encoder.*"``,
    matched against :attr:`layer_names`), an ``nn.Module`` class (``nn.Embedding``), or a list of
    them; ``exclude`` wins. Each must match a layer. ``grad_scaler``: the ``torch.amp.GradScaler``
    of a mixed-precision loop, so that norms are unscaled.

    Frozen layers (weights with ``requires_grad=False`` when the monitor is made, as in a
    fine-tune's backbone) are left out: they have no gradient to judge.

    Activation modules (``vgcourse.activations.activation_kind``: PyTorch's, the course's, and a
    library's such as Hugging Face's ``GELUActivation``) are credited to a layer that ran since
    the previous activation, the nearest in the module tree, so ``layerK.act`` belongs to
    "layer K". A layer's statistics come from the first activation after it and from the last
    forward pass under autograd before each step (forward passes under ``torch.no_grad()``,
    such as evaluation, are ignored). Functional activations (``F.relu`` in a ``forward``) are
    not seen. Rows move to the CPU in bulk (see :class:`MonitorOptions` ``history``). Use as a context manager or call :meth:`close`;
    a monitor nobody closed stops recording once it is garbage, and its hooks go with it. The
    options are kept as attributes of the same names (``hist_every``, ...), with ``model``.
    """

    def __init__(self, model: nn.Module, options: MonitorOptions = EVERYTHING, *, include: LayerChoice = None,
                 exclude: LayerChoice = None, grad_scaler: torch.amp.GradScaler | None = None,
                 **changes: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(options, MonitorOptions):
            raise TypeError(f"options must be a vgcourse.monitor.MonitorOptions, got {type(options).__name__}")
        if grad_scaler is not None and not isinstance(grad_scaler, torch.amp.GradScaler):
            raise TypeError(f"grad_scaler must be a torch.amp.GradScaler or None, got {type(grad_scaler).__name__}")
        self.options = options = options.changed(**changes)
        found = layers(model)
        # a frozen layer (requires_grad False: a fine-tune's backbone) gets no gradient to judge
        trainable = [layer for layer in found if layer.weight.requires_grad]
        if not trainable:
            what = "no trainable layer: all are frozen (requires_grad=False)" if found else (
                "no layer to monitor: no parameter with two or more dimensions")
            raise ValueError(f"{type(model).__name__} has {what}")
        chosen = chosen_layers(trainable, include, exclude)
        self._layers = [(layer.name, layer.module, layer.weight) for layer in chosen]
        self.model, self.hist_every, self.bins = model, options.hist_every, options.bins
        self.ratio_every = options.ratio_every
        self.saturation_margin = float(options.saturation_margin)
        self._weights = [weight for _, _, weight in self._layers]
        monitored = {id(weight) for weight in self._weights}
        # the rest of what an optimizer updates (biases, norm scales): in the total norm only
        others = [(name, p) for name, p in unwrapped(model).named_parameters() if p.requires_grad and id(p) not in monitored]
        self._norm_names = [name for name, _, _ in self._layers] + [name for name, _ in others]
        self._trainable = self._weights + [p for _, p in others]
        self._grad_scaler = grad_scaler
        self._record_histograms, self._record_activations = options.histograms, options.activations
        self._record_ratios = options.update_ratios
        self._model_params = {id(p) for p in model.parameters()}
        self._optimizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._step_count, self._in_step, self._ratio_now, self._skipped_steps = 0, False, False, []
        self._recording = True  # is the next step one to record? (read by the hooks: a flag, for compile)
        # Gradient norms are taken when backward ends, before anything (clipping) changes them:
        # float64 norms of the layers' gradients, the others', then the weights (update ratios).
        self._backward_norms: Tensor | None = None  # of the last backward that no step has used yet
        self._in_backward = False
        # Forward order: the order layers first run, until the first step. A flag, not a test of
        # the step count, so a compiled model's hooks trace once (torch.compile guards on each
        # Python value a hook reads, and recompiles when it changes).
        self._ordering, self._first_run, self._ran = True, [], set()
        paths = {module: path for path, module in unwrapped(model).named_modules()}
        self._paths = [paths.get(module, "") for _, module, _ in self._layers]  # owners' names
        # Another optimizer's step on the same gradients (two optimizers, or one whose step()
        # calls an inner optimizer) is part of the same step, not a new one.
        self._fresh, self._snapshot_is_change = True, False
        self._since: list[int] = []  # layers that ran since the last activation, in order
        self._distances: dict[tuple[str, int], int] = {}  # from an activation to a layer, in modules
        self._pending_stats: dict[int, Tensor] = {}  # this forward pass's, by layer
        self._pending_outputs: dict[int, tuple[str, Tensor]] = {}
        width = len(self._layers)
        self._table = StepTable({"grad": ((width,), np.float64), "total": ((), np.float64),
                                 "ratio": ((width,), np.float32), "activation": ((width, 4), np.float32)},
                                stride=options.every, limit=options.history)
        self._hists: dict[str, list] = {kind: [] for kind in HISTOGRAM_KINDS}  # (step, layer, low, high, counts)
        self._snapshot: list[Tensor] = []  # weights before the step, then their change
        self._scratch: dict[tuple, tuple[Tensor, Tensor]] = {}  # work buffer and NaN, by dtype and device
        self._warned: set[str] = set()  # what has been skipped, each said once

        ref = weakref.ref(self)
        hooks = ExitStack()  # every handle; closed by close(), or when a forgotten monitor is collected
        self._finalizer = weakref.finalize(self, hooks.close)
        hooks.enter_context(_register_pre_hook(_weak_hook(ref, "_before_step")))
        hooks.enter_context(_register_post_hook(_weak_hook(ref, "_after_step")))
        self._backward_end_hook = _weak_hook(ref, "_backward_ended")
        for index, weight in enumerate(self._weights):
            hooks.enter_context(weight.register_hook(_weak_hook(ref, "_gradient_arrived", index)))
        watch_activations = options.activations or options.histograms
        if watch_activations:  # registered first, so it runs before a root layer's own hook
            hooks.enter_context(model.register_forward_pre_hook(_weak_hook(ref, "_start_forward")))
        self._mode, self._mode_depth, self._inside_activation = None, 0, 0
        if watch_activations and options.functional_activations:
            self._mode = _FunctionalActivations(ref)
            hooks.enter_context(model.register_forward_hook(_weak_hook(ref, "_end_forward"), always_call=True))
        indices_of: dict[nn.Module, list[int]] = {}
        for index, (_, module, _) in enumerate(self._layers):
            indices_of.setdefault(module, []).append(index)
        for module, indices in indices_of.items():
            hooks.enter_context(module.register_forward_pre_hook(_weak_hook(ref, "_layer_ran", indices)))
        for path, module in unwrapped(model).named_modules() if watch_activations else ():
            kind = activation_kind(module)
            if kind is not None:
                hook = _weak_hook(ref, "_activation_ran", kind, path)
                hooks.enter_context(module.register_forward_hook(hook, always_call=self._mode is not None))
                if self._mode is not None:  # the functions an activation module calls are the module's
                    hooks.enter_context(module.register_forward_pre_hook(_weak_hook(ref, "_activation_starts")))

    def _start_forward(self, module: nn.Module, inputs: object) -> None:
        self._since = []
        if self._mode is not None and not torch.compiler.is_compiling():
            if self._mode_depth == 0:
                self._mode.__enter__()
            self._mode_depth += 1

    def _activation_starts(self, module: nn.Module, inputs: object) -> None:
        self._inside_activation += 1

    def _end_forward(self, module: nn.Module, inputs: object, output: object) -> None:
        if self._mode_depth:
            self._mode_depth -= 1
            if self._mode_depth == 0:
                self._mode.__exit__(None, None, None)

    def _layer_ran(self, indices: list[int], module: nn.Module, inputs: object) -> None:
        self._fresh = True  # a forward pass since the last step: the next step is a new one
        if self._ordering:
            for index in indices:
                if index not in self._ran:
                    self._ran.add(index)
                    self._first_run.append(index)
        self._since.append(indices[-1])

    def _credited_layer(self, path: str | None) -> int:
        """Which of the layers that ran since the last activation the activation at ``path``
        belongs to: the one nearest to it in the module tree, the latest if several are. In a
        ResNet block, the ReLU after the residual sum belongs to ``conv2``, not to the
        ``downsample`` convolution that ran after it. A functional one (no path): the latest."""
        if len(self._since) == 1 or path is None:
            return self._since[-1]
        return min(reversed(self._since), key=lambda index: self._distance(path, index))

    def _distance(self, path: str, index: int) -> int:
        key = (path, index)
        if key not in self._distances:
            parent = path.split(".")[:-1]
            layer = self._paths[index].split(".") if self._paths[index] else []
            shared = 0
            while shared < min(len(parent), len(layer)) and parent[shared] == layer[shared]:
                shared += 1
            self._distances[key] = len(layer) - shared
        return self._distances[key]

    def _activation_ran(self, kind: str, path: str | None, module: nn.Module | None, inputs: object,
                        output: object) -> None:
        if module is not None and self._inside_activation:
            self._inside_activation -= 1  # the module's own F.relu was left to this hook
        if not self._since or not self._recording or not torch.is_grad_enabled() or not isinstance(output, Tensor):
            return
        layer = self._credited_layer(path)
        self._since = []
        out = output.detach()
        if self._record_activations:
            self._pending_stats[layer] = self._activation_stats(kind, out)
        if self._record_histograms:  # kept every step (a reference, no copy); used on histogram steps
            self._pending_outputs[layer] = (kind, out)

    def _activation_stats(self, kind: str, out: Tensor) -> Tensor:
        # Runs for every layer at every step, so: few passes over the output. The deviations
        # from the mean go into a reused buffer; that is faster on a CPU than std_mean, and
        # unlike the one-pass E[x²] - E[x]² it does not cancel when std << |mean|.
        units = out.reshape(out.shape[0] if out.dim() > 1 else 1, -1)  # unit = non-batch entry
        # One buffer per dtype and device, grown to the largest output seen: inputs of varying
        # shapes (padded text, several resolutions) must not add a buffer each.
        key = (units.dtype, units.device)
        buffer, nan = self._scratch.get(key, (None, None))
        if buffer is None or buffer.numel() < units.numel():
            nan = torch.full((), math.nan, dtype=units.dtype, device=units.device)
            buffer = torch.empty(units.numel(), dtype=units.dtype, device=units.device)
            self._scratch[key] = (buffer, nan)
        deviation = buffer[: units.numel()].view(units.shape)
        unit_sums = units.sum(0)
        mean = unit_sums.sum() / units.numel()
        flat = torch.sub(units, mean, out=deviation).view(-1)
        std = torch.dot(flat, flat).div_(max(units.numel() - 1, 1)).sqrt_()
        saturated = dead = nan
        if kind in OUTPUT_RANGES:
            saturated = saturated_mask(kind, out, self.saturation_margin).mean(dtype=mean.dtype)
        if kind in DEAD_KINDS:  # outputs are >= 0: a unit sums to 0 only if it is 0 on every example
            dead = 1 - torch.count_nonzero(unit_sums).to(mean.dtype) / units.shape[1]
        return torch.stack([mean, std, saturated, dead])

    def _updates_model(self, optimizer: torch.optim.Optimizer) -> bool:
        groups = optimizer.param_groups
        cached = self._optimizers.get(optimizer)
        if cached is None or cached[0] != len(groups):  # a group added since: look again
            hit = any(id(p) in self._model_params for group in groups for p in group["params"])
            cached = self._optimizers[optimizer] = (len(groups), hit)
        return cached[1]

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, *args: object) -> None:
        self._in_step = self._updates_model(optimizer)
        if not self._in_step:
            return
        if not self._fresh and self._step_count:  # no forward pass since the last step: the same step
            if self._ratio_now and self._snapshot_is_change:
                each("add_", self._snapshot, self._weights)  # back to the weights before the step
                self._snapshot_is_change = False
            return
        self._fresh, self._ratio_now, step = False, False, self._step_count
        norms = None
        if self._table.wants(step):
            norms = self._backward_norms if self._backward_norms is not None else self._gradient_norms()
        if not self._start_row(norms):
            self._pending_outputs, self._snapshot = {}, []
            return
        weights = self._weights
        self._ratio_now = self._record_ratios and step % self.ratio_every == 0
        if not self._ratio_now and self.ratio_every > 1:
            self._snapshot = []  # the copy is held from a measured step to the next step only
        if self._ratio_now:
            weight_norms = norms[len(self._trainable) :]
            self._weight_norms = weight_norms if len(weight_norms) else self._norms(weights)
            try:
                kept = (self._snapshot[0].device, self._snapshot[0].dtype) if self._snapshot else None
                if kept != (weights[0].device, weights[0].dtype):  # first step, or the model moved
                    self._snapshot = [torch.empty_like(w) for w in weights]
                each("copy_", self._snapshot, weights)
                self._snapshot_is_change = False
            except Exception as error:
                self._skipped("the update ratios (recorded as NaN)", error)
                self._ratio_now = False  # no ratio row: it reads NaN
        if self._record_histograms and step % (self.hist_every * self._table.stride) == 0:
            try:
                self._record_histograms_now(step)
            except Exception as error:
                self._skipped("the histograms", error)
        self._pending_outputs = {}

    def _start_row(self, norms: Tensor | None) -> bool:
        """A new step, with its gradient norms, total norm and activation statistics if ``norms``
        (``None``: a step not to record). Whether the step has a row."""
        step, self._step_count = self._step_count, self._step_count + 1
        self._ordering, self._backward_norms = False, None
        stats, self._pending_stats = self._pending_stats, {}
        self._recording = self._table.wants(self._step_count)
        if norms is None:
            return False
        activations = None
        if self._record_activations and stats:
            nan = torch.full_like(next(iter(stats.values())), math.nan)
            activations = torch.stack([stats.get(index, nan) for index in range(len(self._weights))])
        stride = self._table.stride
        self._table.add(step, grad=norms[: len(self._weights)], activation=activations,
                        total=torch.linalg.vector_norm(norms[: len(self._trainable)]))
        if self._table.stride != stride:  # the table thinned its rows: so do the histograms
            spacing = self.hist_every * self._table.stride
            self._hists = {kind: [h for h in hists if h[0] % spacing == 0] for kind, hists in self._hists.items()}
            self._recording = self._table.wants(self._step_count)
        return self._table.last_step() == step

    def _gradient_norms(self) -> Tensor:
        """float64 norms of every trainable parameter's gradient (0 if it has none) and, for the
        update ratios, of the weights: one fused call, no host sync."""
        grads = [dense_values(p.grad) if p.grad is not None else p.new_zeros(()) for p in self._trainable]
        ratio_next = self._record_ratios and self._step_count % self.ratio_every == 0  # the next step measures them
        norms = self._norms(grads + (self._weights if ratio_next else []))
        if self._grad_scaler is not None and self._grad_scaler.is_enabled():
            norms[: len(grads)] /= self._grad_scaler.get_scale()  # backward's gradients are scaled
        return norms

    def _gradient_arrived(self, index: int, grad: Tensor) -> None:
        """A tensor hook: the first of a backward pass asks to be called back when it ends."""
        if self._in_backward or not self._recording:
            return
        self._in_backward = True
        if self._backward_norms is not None and self._weights[index].grad is None:
            self._step_skipped()  # gradients reset since the last backward, with no step on them
        # Backward's end is the last moment before user code (clipping, unscaling) changes the
        # gradients. PyTorch has no public hook for it; this engine callback is what DDP and FSDP
        # use. Ours queues itself once more to run after theirs (they average the gradients).
        queue, ended = torch.autograd.Variable._execution_engine.queue_callback, self._backward_end_hook
        queue(lambda: queue(ended))

    def _backward_ended(self) -> None:
        self._in_backward = False
        self._backward_norms = self._gradient_norms()

    def _step_skipped(self) -> None:
        """The last backward's gradients were dropped without an optimizer step. Non-finite ones
        mean a skipped step (``GradScaler`` found inf/NaN): record it. Finite ones were no step."""
        if bool(torch.isfinite(self._backward_norms).all()):
            self._backward_norms = None  # e.g. a probe's backward pass; no step was meant
            return
        self._skipped_steps.append(self._step_count)
        self._start_row(self._backward_norms)

    def _norms(self, tensors: list[Tensor]) -> Tensor:
        """float64 L2 norms of ``tensors`` (gradients, then weights); one that cannot be measured
        reads NaN, with a warning naming it (once)."""
        def failed(index: int, error: Exception) -> None:
            names = self._norm_names
            kind = "gradient" if index < len(names) else "weight"
            self._skipped(f"the {kind} norm of {names[index % len(names)]!r} (recorded as NaN)", error)

        return l2_norms(tensors, failed)

    def _skipped(self, what: str, error: Exception) -> None:
        """Warn, once for each ``what``, that the monitor could not measure it; training goes on."""
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(f"GradientMonitor skipped {what}: {type(error).__name__}: {error}", RuntimeWarning,
                          stacklevel=3)

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, *args: object) -> None:
        if not self._in_step or not self._ratio_now:
            return
        self._in_step = False
        if self._snapshot_is_change:  # this step's first optimizer raised after its pre-step hook
            return
        each("sub_", self._snapshot, self._weights)  # snapshot := w_before - w_after
        self._snapshot_is_change = True
        change = l2_norms(self._snapshot)
        # a later optimizer of the same step replaces it: the change of all of them
        self._table.set_last("ratio", change / self._weight_norms)

    def _record_histograms_now(self, step: int) -> None:
        grads = [dense_values(w.grad) if w.grad is not None else w.new_zeros(()) for w in self._weights]
        limits = torch.stack(torch._foreach_norm(grads, ord=math.inf)).tolist()  # one host sync
        made = [self._histogram("grad", index, grad, -limit, limit)
                for index, (weight, grad, limit) in enumerate(zip(self._weights, grads, limits))
                if weight.grad is not None]  # a layer without a gradient gets no histogram
        outputs = self._pending_outputs
        if outputs:
            observed = [torch.stack(torch.aminmax(out.float())) for _, out in outputs.values()]
            observed = torch.stack(observed).tolist()  # one host sync
            made += [self._histogram("activation", index, out, *OUTPUT_RANGES.get(kind, limits))
                     for (index, (kind, out)), limits in zip(outputs.items(), observed)]
        made = [histogram for histogram in made if histogram is not None]
        if made:  # to the CPU together, as int32
            counts = torch.stack([counts for *_, counts in made]).cpu().numpy().astype(np.int32)
            for (kind, index, low, high, _), row in zip(made, counts):
                self._hists[kind].append((step, index, low, high, row))

    def _histogram(self, kind: str, index: int, values: Tensor, low: float, high: float) -> tuple | None:
        if not (math.isfinite(low) and math.isfinite(high)):
            return None  # a layer with inf/NaN values gets no histogram; see first_nonfinite()
        if low == high:
            low, high = low - 0.5, high + 0.5
        return kind, index, low, high, torch.histc(values.float(), self.bins, low, high)

    def _order(self) -> list[int]:
        order = list(self._first_run)
        for index in range(len(self._layers)):
            if index not in self._ran:  # its module never ran: its weight is used by a parent's
                order.insert(self._fallback_position(index, order), index)  # forward (attention's out_proj)
        return order

    def _fallback_position(self, index: int, order: list[int]) -> int:
        """Where a layer whose module never ran goes: after the last layer placed so far inside its
        nearest enclosing module that holds any (at the end if none)."""
        path = self._paths[index]
        while path:
            path = path.rpartition(".")[0]
            inside = [position for position, other in enumerate(order)
                      if not path or self._paths[other] == path or self._paths[other].startswith(path + ".")]
            if inside:
                return inside[-1] + 1
        return len(order)

    def _column(self, kind: str, column: int | None = None) -> np.ndarray:
        values = self._table.column(kind).astype(np.float64)
        return (values if column is None else values[..., column])[:, self._order()]

    @property
    def layer_names(self) -> list[str]:
        """The names of ``vgcourse.models.layers(model)``, in forward order."""
        return [self._layers[i][0] for i in self._order()]

    @property
    def steps(self) -> int:
        """Number of steps recorded so far: the rows of every table (see :meth:`step_numbers`)."""
        return len(self._table)

    def step_numbers(self) -> np.ndarray:
        """The optimizer step (0, 1, ...) of each recorded row: ``arange(steps)`` unless ``every``
        or ``history`` thinned them."""
        return self._table.steps()

    def grad_norms(self) -> np.ndarray:
        """L2 norm of each layer's weight gradient, shape ``(steps, layers)``, as the backward pass
        left it: before clipping (and unscaled by ``grad_scaler`` when the monitor has it). With
        gradient accumulation, the gradient of the last backward pass before the step.

        Summed in float64, so a norm is 0 only if every entry of that gradient was 0 (a float32
        sum of squares underflows to 0 for entries below about 1e-23)."""
        return self._column("grad")

    def total_grad_norms(self) -> np.ndarray:
        """L2 norm of all the model's trainable gradients (biases too) at each step, ``(steps,)``:
        the number ``torch.nn.utils.clip_grad_norm_(model.parameters(), ...)`` returns."""
        return self._table.column("total").astype(np.float64)

    def skipped_steps(self) -> list[int]:
        """Steps whose optimizer step did not run because their gradients held inf/NaN (as
        ``GradScaler`` skips them); their norms are recorded, their update ratios read NaN. A
        skipped step is noticed when the next backward pass starts."""
        return list(self._skipped_steps)

    def update_ratios(self) -> np.ndarray:
        """``‖Δw‖ / ‖w‖`` of each step (``w`` before it), ``(steps, layers)``; NaN if off."""
        return self._column("ratio")

    def activation_means(self) -> np.ndarray:
        """Mean activation output per layer, ``(steps, layers)``; NaN where no activation ran."""
        return self._column("activation", _MEAN)

    def activation_stds(self) -> np.ndarray:
        """Standard deviation of activation outputs per layer, ``(steps, layers)``."""
        return self._column("activation", _STD)

    def saturated_fractions(self) -> np.ndarray:
        """Fraction of saturated outputs per layer, ``(steps, layers)``; NaN unless sigmoid/tanh."""
        return self._column("activation", _SATURATED)

    def dead_fractions(self) -> np.ndarray:
        """Fraction of units that are 0 on the whole batch, ``(steps, layers)``; NaN unless ReLU."""
        return self._column("activation", _DEAD)

    def histograms(self, kind: str = "grad") -> list[Histogram]:
        """Recorded histograms of ``kind`` ("grad" or "activation"), by step then forward order."""
        check_choice(kind, "kind", HISTOGRAM_KINDS)
        rank = {index: position for position, index in enumerate(self._order())}
        records = sorted(self._hists[kind], key=lambda record: (record[0], rank[record[1]]))
        return [Histogram(step, self._layers[index][0], np.linspace(low, high, self.bins + 1), counts.astype(np.int64))
                for step, index, low, high, counts in records]

    def records(self) -> MonitorRecords:
        """A snapshot of everything recorded so far: arrays only, picklable (``torch.save``), with
        the same queries and exports as the monitor."""
        return MonitorRecords.of(self)

    def __reduce__(self) -> tuple:
        # A monitor pickles as its records: hooks and the model are no data to keep.
        return MonitorRecords.of(self).__reduce__()

    def close(self) -> None:
        """Remove every hook this monitor registered; the recorded data stay queryable."""
        self._finalizer()  # closes the ExitStack of hooks, once
        if self._mode_depth:  # closed inside the model's forward
            self._mode_depth = 0
            self._mode.__exit__(None, None, None)
        self._snapshot, self._scratch, self._pending_stats, self._pending_outputs = [], {}, {}, {}

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
