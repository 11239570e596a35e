"""A :class:`~vgcourse.monitor.GradientMonitor`'s records as a plain, picklable object, and exports.

    records = MonitorRecords.of(mon)     # a snapshot: no hooks, no model, no tensors
    torch.save(records, "run.pt")        # load with torch.load("run.pt", weights_only=False)
    records.to_dataframe()               # tidy table: step, layer, quantity, value
    records.to_csv("run.csv")            # the same table, no pandas needed
    records.to_tensorboard(writer)       # scalars and histograms into a SummaryWriter
    print(records.summary())             # one line per layer: the median of each quantity

:class:`RecordQueries` holds the exports and ``summary``, written only in terms of the query
methods (``grad_norms()``, ...), so the monitor and its records share them. This module does not
import ``vgcourse.monitor``: the monitor imports it.
"""

from __future__ import annotations

import csv
import math
import operator
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from vgcourse.validation import check_choice, check_int, check_number

__all__ = ["HISTOGRAM_KINDS", "QUANTITIES", "TOTAL_LAYER", "Histogram", "MonitorLike", "MonitorRecords",
           "RecordQueries", "first_nonfinite_norm"]

HISTOGRAM_KINDS = ("grad", "activation")
# Each per-layer quantity (the name in tables and tags) and the query method that returns it.
LAYER_QUANTITIES = {
    "grad_norm": "grad_norms",
    "update_ratio": "update_ratios",
    "activation_mean": "activation_means",
    "activation_std": "activation_stds",
    "saturated_fraction": "saturated_fractions",
    "dead_fraction": "dead_fractions",
}
QUANTITIES = (*LAYER_QUANTITIES, "total_grad_norm")
MEASURED_EVERY_STEP = frozenset({"grad_norm", "total_grad_norm"})
"""Quantities with a value at every recorded step: a NaN in them is the gradient's, not a gap."""
TOTAL_LAYER = "(all)"
"""The layer name of the total gradient norm (over every parameter of the model) in tables."""
_INSTALL = "pip install 'vgcourse[export]' torch==2.13.0"  # torch held at the course's version


@dataclass(frozen=True, eq=False)
class Histogram:
    """Counts of one layer's gradient or activation values at one step.

    ``counts[i]`` values fell in ``[edges[i], edges[i + 1]]``; ``len(edges) == len(counts) + 1``.
    """

    step: int
    layer: str
    edges: np.ndarray
    counts: np.ndarray

    def central_width(self, share: float = 0.98) -> float:
        """The width of the range that holds the central ``share`` of the values, to the bins' resolution.

        It runs from the bin where ``(1 - share) / 2`` of the values lie below to the bin where as
        many lie above, both bins included: the spread of the values without their outliers.

        Raises:
            ValueError: if ``share`` is not in (0, 1], or the histogram counted no values.
        """
        share = check_number(share, "share", 0, 1, include_high=True)
        total = self.counts.sum()
        if total <= 0:
            raise ValueError(f"the histogram of {self.layer!r} at step {self.step} counted no values")
        cumulative = np.cumsum(self.counts) / total
        tail = (1 - share) / 2
        low = int(np.searchsorted(cumulative, tail, side="right")) if tail > 0 else 0
        high = min(int(np.searchsorted(cumulative, 1 - tail, side="left")), len(self.counts) - 1)
        return float(self.edges[high + 1] - self.edges[low])


def first_nonfinite_norm(grad_norms: np.ndarray, layer_names: Sequence[str]) -> tuple[int, str] | None:
    """``(step, layer)`` of the first inf/NaN in ``grad_norms`` (``(steps, layers)``, layers in
    forward order), the earliest layer within that step; ``None`` if every norm is finite."""
    bad = ~np.isfinite(grad_norms)
    if not bad.any():
        return None
    step = int(bad.any(axis=1).argmax())
    return step, layer_names[int(bad[step].argmax())]


def _median(values: np.ndarray) -> float:
    """Median of the recorded (non-NaN) ``values``; NaN if none was recorded."""
    recorded = values[~np.isnan(values)]
    return float(np.median(recorded)) if recorded.size else math.nan


class RecordQueries:
    """Exports and a summary for any class with a monitor's query methods (see :class:`MonitorLike`).

    NaN means "not recorded" for update ratios and activation statistics: tables and TensorBoard
    leave those entries out. Gradient norms are recorded at every step, so a NaN or inf there is
    what the gradient held, and it is kept (:meth:`first_nonfinite` finds the first).
    """

    def first_nonfinite(self) -> tuple[int, str] | None:
        """``(step, layer)`` of the first inf/NaN gradient norm (the earliest layer in forward
        order within that step), or ``None`` if every norm was finite."""
        found = first_nonfinite_norm(self.grad_norms(), list(self.layer_names))
        return None if found is None else (int(self.step_numbers()[found[0]]), found[1])

    def _long_table(self) -> dict[str, np.ndarray]:
        """The tidy table's columns: by quantity (``QUANTITIES`` order), then layer in forward
        order, then step ascending; NaN entries left out but for gradient norms, where a NaN
        is what the gradient held."""
        names = np.array(list(self.layer_names) + [TOTAL_LAYER], dtype=object)
        numbers = np.asarray(self.step_numbers(), dtype=np.int64)  # the optimizer step of each row
        columns: dict[str, list[np.ndarray]] = {"step": [], "layer": [], "quantity": [], "value": []}
        tables = [(quantity, getattr(self, method)()) for quantity, method in LAYER_QUANTITIES.items()]
        tables.append(("total_grad_norm", np.asarray(self.total_grad_norms(), dtype=float)[:, None]))
        for quantity, table in tables:
            by_layer = np.asarray(table, dtype=float).T  # (layers, steps): layer-major order
            kept = np.ones_like(by_layer, bool) if quantity in MEASURED_EVERY_STEP else ~np.isnan(by_layer)
            layer, step = np.nonzero(kept)
            offset = len(names) - 1 if quantity == "total_grad_norm" else 0
            columns["step"].append(numbers[step])
            columns["layer"].append(names[layer + offset])
            columns["quantity"].append(np.full(len(step), quantity, dtype=object))
            columns["value"].append(by_layer[layer, step])
        return {name: np.concatenate(parts) for name, parts in columns.items()}

    def to_dataframe(self) -> Any:
        """A ``pandas.DataFrame`` with columns ``step`` (int), ``layer`` (str; ``"(all)"`` for
        the total gradient norm), ``quantity`` (one of ``QUANTITIES``) and ``value`` (float).

        One row per recorded value, by quantity, then layer in forward order, then step.
        Needs pandas (``pip install 'vgcourse[export]' torch==2.13.0``).
        """
        try:
            import pandas as pd
        except ImportError as error:
            raise ImportError(f"to_dataframe() needs pandas, which is not installed: {_INSTALL}") from error
        return pd.DataFrame(self._long_table())

    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the :meth:`to_dataframe` table to ``path`` as CSV (header
        ``step,layer,quantity,value``) and return the path; no pandas needed.

        An existing file is kept and ``FileExistsError`` raised, unless ``overwrite=True``.
        """
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
        path = Path(os.fspath(path))
        table = self._long_table()
        try:  # "x" creates the file or fails: no window in which another file could appear
            with open(path, "w" if overwrite else "x", newline="", encoding="utf-8") as file:
                writer = csv.writer(file)
                writer.writerow(table)
                writer.writerows(zip(table["step"].tolist(), table["layer"], table["quantity"],
                                     table["value"].tolist()))
        except FileExistsError:
            raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it") from None
        return path

    def to_tensorboard(self, writer: Any, *, histograms: bool = True) -> None:
        """Log the records to ``writer``, a ``torch.utils.tensorboard.SummaryWriter``.

        Scalars go to tags ``"<quantity>/<layer>"`` (``"grad_norm/layer 1"``, ...) and
        ``"total_grad_norm"`` at ``global_step=step``; gaps (NaN) are left out. With
        ``histograms``, each :class:`Histogram` goes to ``"grad_hist/<layer>"`` or
        ``"activation_hist/<layer>"`` through ``add_histogram_raw``: the bucket counts are
        exact, but the raw values are gone, so ``sum`` and ``sum_squares`` are computed as if
        every value sat at its bin's centre, and ``min``/``max`` are the outer edges of the
        first and last non-empty bins. Empty histograms are left out. The writer stays open:
        flush or close it to see everything on disk.
        """
        if not isinstance(histograms, bool):
            raise TypeError(f"histograms must be True or False, got {histograms!r}")
        needed = ("add_scalar", "add_histogram_raw") if histograms else ("add_scalar",)
        missing = [name for name in needed if not callable(getattr(writer, name, None))]
        if missing:
            raise TypeError(f"writer must be a torch.utils.tensorboard.SummaryWriter (or have its {list(needed)}"
                            f" methods); {type(writer).__name__} has no {missing}")
        table = self._long_table()
        for step, layer, quantity, value in zip(table["step"].tolist(), table["layer"], table["quantity"],
                                                table["value"].tolist()):
            tag = quantity if layer == TOTAL_LAYER else f"{quantity}/{layer}"
            writer.add_scalar(tag, value, global_step=step)
        for kind in HISTOGRAM_KINDS if histograms else ():
            for hist in self.histograms(kind):
                edges, counts = np.asarray(hist.edges, dtype=float), np.asarray(hist.counts)
                filled = np.flatnonzero(counts)
                if not filled.size:
                    continue
                centres = (edges[:-1] + edges[1:]) / 2
                writer.add_histogram_raw(
                    f"{kind}_hist/{hist.layer}", min=float(edges[filled[0]]), max=float(edges[filled[-1] + 1]),
                    num=int(counts.sum()), sum=float(centres @ counts), sum_squares=float(centres**2 @ counts),
                    bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=hist.step)

    def summary(self) -> str:
        """A fixed-width table: a header line (steps, skipped steps, median total gradient norm),
        then one row per layer in forward order with the median over steps of its gradient norm,
        update ratio, saturated and dead fraction; ``-`` where a quantity was not recorded."""
        def number(value: float, spec: str) -> str:
            return "-" if math.isnan(value) else format(value, spec)

        columns = [("grad norm", self.grad_norms(), ".3e"), ("update ratio", self.update_ratios(), ".3e"),
                   ("saturated", self.saturated_fractions(), ".3f"), ("dead", self.dead_fractions(), ".3f")]
        names = list(self.layer_names)
        cells = [[number(_median(table[:, index]), spec) for _, table, spec in columns]
                 for index in range(len(names))]
        width = max(len(name) for name in ["layer", *names])
        widths = [max(len(title), *(len(row[i]) for row in cells)) for i, (title, _, _) in enumerate(columns)]
        total = number(_median(np.asarray(self.total_grad_norms(), dtype=float)), ".3e")
        lines = [f"{self.steps} steps, {len(self.skipped_steps())} skipped; median total grad norm {total}",
                 "  ".join([f"{'layer':<{width}}", *(f"{t:>{w}}" for (t, _, _), w in zip(columns, widths))])]
        lines.append("-" * len(lines[1]))
        for name, row in zip(names, cells):
            lines.append("  ".join([f"{name:<{width}}", *(f"{c:>{w}}" for c, w in zip(row, widths))]))
        return "\n".join(lines)


class MonitorLike(Protocol):
    """What :meth:`MonitorRecords.of` reads: a ``GradientMonitor``'s queries and options."""

    saturation_margin: float
    hist_every: int
    bins: int

    @property
    def layer_names(self) -> Sequence[str]: ...
    def grad_norms(self) -> np.ndarray: ...
    def update_ratios(self) -> np.ndarray: ...
    def activation_means(self) -> np.ndarray: ...
    def activation_stds(self) -> np.ndarray: ...
    def saturated_fractions(self) -> np.ndarray: ...
    def dead_fractions(self) -> np.ndarray: ...
    def total_grad_norms(self) -> np.ndarray: ...
    def skipped_steps(self) -> list[int]: ...
    def step_numbers(self) -> np.ndarray: ...
    def histograms(self, kind: str = "grad") -> list[Histogram]: ...


def _frozen(values: object, dtype: type) -> np.ndarray:
    array = np.array(values, dtype=dtype)  # always a copy: the caller's array stays theirs
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class MonitorRecords(RecordQueries):
    """A :class:`~vgcourse.monitor.GradientMonitor`'s records: arrays only, no hooks or model.

    The array fields are named after :data:`QUANTITIES` and are read-only; the query methods
    (``grad_norms()``, ...) return writable copies, like the monitor's. Per-layer arrays are
    ``(steps, layers)`` with layers in forward order, ``total_grad_norm`` is ``(steps,)``; NaN
    means not recorded; ``optimizer_steps`` is the optimizer step of each row (default
    ``0 .. steps - 1``). It pickles, so ``torch.save`` works, but ``torch.load`` needs
    ``weights_only=False`` (only for a file you trust): a weights-only load refuses classes
    it does not know, and this one is not added to torch's global allow-list on import.
    """

    layer_names: tuple[str, ...]
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    activation_mean: np.ndarray
    activation_std: np.ndarray
    saturated_fraction: np.ndarray
    dead_fraction: np.ndarray
    total_grad_norm: np.ndarray
    skipped: tuple[int, ...]
    saturation_margin: float
    hist_every: int
    bins: int
    grad_histograms: tuple[Histogram, ...] = ()
    activation_histograms: tuple[Histogram, ...] = ()
    optimizer_steps: np.ndarray | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        names = self.layer_names
        if isinstance(names, str) or not all(isinstance(name, str) for name in names) or not names:
            raise ValueError(f"layer_names must be a non-empty sequence of str, got {names!r}")
        if len(set(names)) != len(names) or TOTAL_LAYER in names:
            raise ValueError(f"layer_names must be distinct and not {TOTAL_LAYER!r}, got {list(names)}")
        put("layer_names", tuple(names))
        grad = np.asarray(self.grad_norm)
        if grad.ndim != 2 or grad.shape[1] != len(names):
            raise ValueError(f"grad_norm must have shape (steps, {len(names)}) for {len(names)} layer(s), "
                             f"got {grad.shape}")
        steps = grad.shape[0]
        for quantity in LAYER_QUANTITIES:
            shape = np.shape(getattr(self, quantity))
            if shape != (steps, len(names)):
                raise ValueError(f"{quantity} must have shape (steps, layers) = {(steps, len(names))}, got {shape}")
            put(quantity, _frozen(getattr(self, quantity), np.float64))
        if np.shape(self.total_grad_norm) != (steps,):
            raise ValueError(f"total_grad_norm must have shape (steps,) = {(steps,)}, got "
                             f"{np.shape(self.total_grad_norm)}")
        put("total_grad_norm", _frozen(self.total_grad_norm, np.float64))
        numbers = np.arange(steps) if self.optimizer_steps is None else np.array(self.optimizer_steps)
        if numbers.shape != (steps,) or (steps and (numbers[0] < 0 or (np.diff(numbers) <= 0).any())):
            raise ValueError(f"optimizer_steps must be {steps} ascending optimizer steps >= 0, got {numbers!r}")
        put("optimizer_steps", _frozen(numbers, np.int64))
        skipped = tuple(operator.index(step) for step in self.skipped)
        if list(skipped) != sorted(set(skipped)) or any(step < 0 for step in skipped):
            raise ValueError(f"skipped must be distinct optimizer steps >= 0, ascending, got {skipped}")
        put("skipped", skipped)
        put("saturation_margin", check_number(self.saturation_margin, "saturation_margin", 0, include_low=True))
        put("hist_every", check_int(self.hist_every, "hist_every", minimum=1))
        put("bins", check_int(self.bins, "bins", minimum=1))
        rank = {name: position for position, name in enumerate(names)}
        recorded = set(self.optimizer_steps.tolist())
        for kind in HISTOGRAM_KINDS:
            field = f"{kind}_histograms"
            kept = []
            for hist in getattr(self, field):  # any object with a Histogram's fields is copied into one
                step, layer = getattr(hist, "step", None), getattr(hist, "layer", None)
                if not hasattr(hist, "counts") or layer not in rank or not isinstance(step, (int, np.integer)) \
                        or step not in recorded:
                    raise ValueError(f"{field} must hold Histograms of the layers {list(names)} at recorded "
                                     f"steps, got {hist!r}")
                edges, counts = _frozen(hist.edges, np.float64), _frozen(hist.counts, np.int64)
                if counts.ndim != 1 or edges.shape != (counts.size + 1,):
                    raise ValueError(f"{field}: a Histogram with {counts.size} counts needs {counts.size + 1} "
                                     f"edges, got shape {edges.shape} (step {step}, layer {layer!r})")
                kept.append(Histogram(int(step), layer, edges, counts))
            put(field, tuple(sorted(kept, key=lambda hist: (hist.step, rank[hist.layer]))))

    def __reduce__(self) -> tuple:
        # Unpickled through __init__, so a loaded record is validated and read-only again.
        return type(self), tuple(getattr(self, field.name) for field in fields(self))

    @classmethod
    def of(cls, monitor: MonitorLike) -> MonitorRecords:
        """A snapshot of ``monitor``'s records (anything with the queries of :class:`MonitorLike`)."""
        needed = ["layer_names", *LAYER_QUANTITIES.values(), "total_grad_norms", "skipped_steps", "histograms", "step_numbers",
                  "saturation_margin", "hist_every", "bins"]
        missing = [name for name in needed if not hasattr(monitor, name)]
        if missing:
            raise TypeError(f"MonitorRecords.of needs a GradientMonitor (or an object with {needed}); "
                            f"{type(monitor).__name__} has no {missing}")
        arrays = {quantity: getattr(monitor, method)() for quantity, method in LAYER_QUANTITIES.items()}
        return cls(tuple(monitor.layer_names), **arrays, total_grad_norm=monitor.total_grad_norms(),
                   skipped=tuple(monitor.skipped_steps()), saturation_margin=monitor.saturation_margin,
                   hist_every=monitor.hist_every, bins=monitor.bins,
                   grad_histograms=tuple(monitor.histograms("grad")),
                   activation_histograms=tuple(monitor.histograms("activation")),
                   optimizer_steps=monitor.step_numbers())

    @property
    def steps(self) -> int:
        """Number of steps recorded: the rows of every table."""
        return self.grad_norm.shape[0]

    def step_numbers(self) -> np.ndarray:
        """The optimizer step of each row (``arange(steps)`` unless the monitor thinned them)."""
        return self.optimizer_steps.copy()

    def grad_norms(self) -> np.ndarray:
        """L2 norm of each layer's weight gradient, ``(steps, layers)``."""
        return self.grad_norm.copy()

    def update_ratios(self) -> np.ndarray:
        """``‖Δw‖ / ‖w‖`` of each step, ``(steps, layers)``; NaN if not recorded."""
        return self.update_ratio.copy()

    def activation_means(self) -> np.ndarray:
        """Mean activation output per layer, ``(steps, layers)``."""
        return self.activation_mean.copy()

    def activation_stds(self) -> np.ndarray:
        """Standard deviation of activation outputs per layer, ``(steps, layers)``."""
        return self.activation_std.copy()

    def saturated_fractions(self) -> np.ndarray:
        """Fraction of saturated outputs per layer, ``(steps, layers)``; NaN unless sigmoid/tanh."""
        return self.saturated_fraction.copy()

    def dead_fractions(self) -> np.ndarray:
        """Fraction of units that are 0 on the whole batch, ``(steps, layers)``; NaN unless ReLU."""
        return self.dead_fraction.copy()

    def total_grad_norms(self) -> np.ndarray:
        """L2 norm over all of the model's parameter gradients at each step (before any
        clipping), shape ``(steps,)``."""
        return self.total_grad_norm.copy()

    def skipped_steps(self) -> list[int]:
        """Steps at which the optimizer step did not run (e.g. a GradScaler found inf), ascending."""
        return list(self.skipped)

    def histograms(self, kind: str = "grad") -> list[Histogram]:
        """Recorded histograms of ``kind`` ("grad" or "activation"), by step then forward order."""
        check_choice(kind, "kind", HISTOGRAM_KINDS)
        kept = getattr(self, f"{kind}_histograms")
        return [Histogram(hist.step, hist.layer, hist.edges.copy(), hist.counts.copy()) for hist in kept]
