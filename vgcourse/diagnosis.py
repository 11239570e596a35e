"""``diagnose()``: name what is wrong with a network's gradients from a monitor's records.

Each layer is summarised by its median over ``window`` recorded steps — the last ones by
default (the network as training left it), or the first ones with ``at="start"`` (the network as
it was built, before training changed it) — so one noisy batch does not decide the verdict. The
first/last comparison is the course's headline number, :func:`first_last_ratio`: the median over
the same steps of layer 1's gradient norm over the last layer's. The criteria, most severe first:

- **nonfinite**: some gradient norm was inf or NaN at any recorded step.
- **exploding**: the largest layer gradient norm is at least ``explode_norm``, or the first
  layer's gradient norm is at least ``explode_ratio`` times the last layer's. (Large weights
  blow up activations and gradients together, so the first test catches a network whose norms
  are huge everywhere; the second catches growth toward the input.)
- **dead**: in some ReLU layer at least ``dead_threshold`` of the units gave 0 on a whole batch.
- **vanishing**: the first layer's gradient norm is at most ``vanish_ratio`` times the last's.
- **healthy**: none of the above.

The most saturated sigmoid/tanh layer is reported alongside but not judged on its own:
saturated units pass little gradient, yet large weights can make up for it, so the verdict
rests on the gradients themselves. So is the layer whose weights move least: when the monitor
recorded update ratios ``‖Δw‖ / ‖w‖`` (Karpathy's guide: about 1e-3 per step), a layer whose
ratio is at least ``slow_update_gap`` times below the median layer's is named. Under plain SGD a
vanishing gradient shows here too; an optimizer that rescales steps per parameter (Adam) makes
every layer's update ratio alike, which silences this note, while the gradient norms — and so
the verdict — still show the vanishing (notebook 03).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from vgcourse.monitor import GradientMonitor
from vgcourse.validation import check_choice, check_int, check_number

VERDICTS = ("nonfinite", "exploding", "dead", "vanishing", "healthy")
"""Every verdict ``diagnose`` can return, most severe first."""


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on a monitored run and the numbers behind it.

    Attributes:
        verdict: the most severe entry of ``problems``, or ``"healthy"``.
        problems: every criterion that fired, most severe first (empty when healthy).
        steps_used: how many steps the medians were taken over.
        at: ``"end"`` if they were the last recorded steps, ``"start"`` if the first.
        first_layer, last_layer: the first and last layer in forward order.
        grad_norm_ratio: :func:`first_last_ratio` over the steps used: the median of
            ``first_layer``'s gradient norm divided by ``last_layer``'s.
        max_grad_norm, max_grad_layer: the largest median gradient norm and its layer.
        saturated_fraction, saturated_layer: the most saturated layer (NaN and ``None`` when
            no sigmoid/tanh activation was seen).
        dead_fraction, dead_layer: the ReLU layer with the most dead units (NaN, ``None``).
        slowest_update_ratio, slowest_update_layer: the smallest median update ratio
            ``‖Δw‖ / ‖w‖`` and its layer (NaN and ``None`` when the monitor recorded none).
        update_ratio_gap: the median layer's update ratio over ``slowest_update_ratio`` (NaN when
            fewer than two layers have one; infinite when the slowest layer did not move).
        nonfinite: ``(step, layer)`` of the first non-finite gradient norm, or ``None``.
        thresholds: the thresholds the verdict used, by name (in the ``repr``; ``str`` gives
            the verdict and its evidence only).
    """

    verdict: str
    problems: tuple[str, ...]
    steps_used: int
    at: str
    first_layer: str
    last_layer: str
    grad_norm_ratio: float
    max_grad_norm: float
    max_grad_layer: str
    saturated_fraction: float
    saturated_layer: str | None
    dead_fraction: float
    dead_layer: str | None
    nonfinite: tuple[int, str] | None
    slowest_update_ratio: float = math.nan
    slowest_update_layer: str | None = None
    update_ratio_gap: float = math.nan
    thresholds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = []
        if self.nonfinite is not None:
            parts.append("a gradient norm became inf/NaN at step {} in {}".format(*self.nonfinite))
        largest = f"the largest gradient norm is {self.max_grad_norm:.3g} ({self.max_grad_layer})"
        if "exploding" in self.problems:
            parts.append(largest)
        if "dead" in self.problems:
            parts.append(f"{self.dead_fraction:.0%} of {self.dead_layer}'s units are dead")
        if math.isfinite(self.grad_norm_ratio) or {"exploding", "vanishing"} & set(self.problems):
            parts.append(
                f"the gradient norm of {self.first_layer} is {self.grad_norm_ratio:.2g} × "
                f"that of {self.last_layer}"
            )
        if not self.problems:
            parts.append(largest)
        saturated = self.saturated_fraction >= self.thresholds["saturation_threshold"]
        if self.saturated_layer is not None and saturated:
            note = "" if self.problems else "note: "  # saturated, yet the gradients flow
            parts.append(
                f"{note}{self.saturated_fraction:.0%} of {self.saturated_layer}'s units are saturated"
            )
        if self.slowest_update_layer is not None and self.update_ratio_gap >= self.thresholds["slow_update_gap"]:
            note = "" if self.problems else "note: "
            parts.append(
                f"{note}{self.slowest_update_layer}'s updates are {self.update_ratio_gap:.2g} × smaller than the "
                f"median layer's (‖Δw‖/‖w‖ = {self.slowest_update_ratio:.2g})"
            )
        # The verdict and its evidence only; the thresholds are in ``thresholds`` and the repr.
        return f"{self.verdict}: {'; '.join(parts)} (median of the {'first' if self.at == 'start' else 'last'} {self.steps_used} steps)"


WINDOW_ENDS = ("end", "start")
"""Where ``diagnose``'s window of steps may sit: the last recorded steps, or the first."""


class HasGradNorms(Protocol):
    """Anything with per-step, per-layer gradient norms: a ``GradientMonitor``, a ``SeedRun``."""

    def grad_norms(self) -> np.ndarray: ...


def first_last_ratios(run: HasGradNorms | np.ndarray) -> np.ndarray:
    """Layer 1's gradient norm over the last layer's at every step (every row of an array,
    e.g. one per seed), shape ``(steps,)``.

    Args:
        run: a :class:`~vgcourse.monitor.GradientMonitor`, a ``vgcourse.seeds.SeedRun`` (anything
            with ``grad_norms()``), or such an array of norms, ``(steps, layers)``, layer 1 first.

    Returns:
        ``norms[:, 0] / norms[:, -1]``; a step where both norms are 0 gives NaN.
    """
    norms = np.asarray(run if isinstance(run, np.ndarray) else run.grad_norms(), dtype=float)
    if norms.ndim != 2:
        raise ValueError(f"gradient norms must have shape (steps, layers), got {norms.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return norms[:, 0] / norms[:, -1]


def first_last_ratio(
    run: HasGradNorms | np.ndarray, last: int | None = None, *, first: int | None = None
) -> float:
    """The course's headline number: layer 1's gradient norm over the last layer's, as the median
    over steps of the per-step ratio (:func:`first_last_ratios`).

    The median of per-step ratios, not the ratio of the two layers' median norms: at each step
    both norms come from the same batch and the same weights, so a batch that scales every
    gradient up or down cancels out of the ratio before the median is taken, and the median
    then discards the steps where one layer alone was noisy. (A ratio of medians can divide
    layer 1's norm at one step by the last layer's at another.) ``diagnose`` reports this number
    as ``grad_norm_ratio``.

    Args:
        run: as for :func:`first_last_ratios`.
        last: use only the last ``last`` steps (default: every step).
        first: use only the first ``first`` steps instead (not with ``last``).

    Returns:
        the median, NaN for a run with no step (steps where both norms are 0 are skipped).
    """
    if last is not None and first is not None:
        raise ValueError(f"give last or first, not both (got last={last!r}, first={first!r})")
    ratios = first_last_ratios(run)
    if last is not None:
        ratios = ratios[-check_int(last, "last", minimum=1):]
    if first is not None:
        ratios = ratios[: check_int(first, "first", minimum=1)]
    if np.all(np.isnan(ratios)):  # also no steps at all
        return math.nan
    return float(np.nanmedian(ratios))


def _window_median(table: np.ndarray, window: int, at: str) -> np.ndarray:
    rows = table[-window:] if at == "end" else table[:window]
    with warnings.catch_warnings():  # columns without data (all NaN) stay NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(rows, axis=0)


def _slowest(update_ratios: np.ndarray, names: list[str]) -> tuple[float, str | None, float]:
    """``(smallest ratio, its layer, median ratio / smallest)`` over the layers with a recorded ratio."""
    recorded = [(float(r), name) for r, name in zip(update_ratios, names) if np.isfinite(r)]
    if not recorded:
        return math.nan, None, math.nan
    smallest, layer = min(recorded)
    if len(recorded) < 2:
        return smallest, layer, math.nan
    median = float(np.median([r for r, _ in recorded]))
    return smallest, layer, (median / smallest if smallest > 0 else math.inf)


def _worst(values: np.ndarray, names: list[str]) -> tuple[float, str | None]:
    if np.all(np.isnan(values)):
        return math.nan, None
    index = int(np.nanargmax(values))
    return float(values[index]), names[index]


def diagnose(
    monitor: GradientMonitor,
    vanish_ratio: float = 1e-3,
    explode_norm: float = 1e3,
    explode_ratio: float = 1e3,
    saturation_threshold: float = 0.9,
    dead_threshold: float = 0.9,
    slow_update_gap: float = 100.0,
    window: int = 20,
    at: str = "end",
) -> Diagnosis:
    """Diagnose the run recorded by ``monitor`` (criteria in the module docstring).

    Args:
        monitor: a :class:`~vgcourse.monitor.GradientMonitor` that has seen at least one step.
        vanish_ratio: first/last gradient-norm ratio at or below which gradients vanish, in (0, 1).
        explode_norm: a layer gradient norm at or above which gradients explode, > 0.
        explode_ratio: first/last gradient-norm ratio at or above which gradients explode, > 1.
        saturation_threshold: fraction of saturated units worth reporting, in (0, 1].
        dead_threshold: fraction of dead units in one layer that makes the network dead, in (0, 1].
        slow_update_gap: how many times below the median layer's update ratio a layer's must be to
            be reported (> 1); reported only, it does not change the verdict.
        window: number of steps to take medians over.
        at: ``"end"``: the last ``window`` steps, the network as training left it; ``"start"``:
            the first ``window`` steps, the network as it was built (an untrained network's
            problem shows there, before training turns, say, an explosion into dead units).

    Returns:
        a :class:`Diagnosis`; ``str()`` of it is a one-line readable report.
    """
    if not isinstance(monitor, GradientMonitor):
        raise TypeError(f"monitor must be a GradientMonitor, got {type(monitor).__name__}")
    if monitor.steps == 0:
        raise ValueError("the monitor recorded no optimizer steps; train with it attached first")
    thresholds = {
        "vanish_ratio": check_number(vanish_ratio, "vanish_ratio", 0, 1),
        "explode_norm": check_number(explode_norm, "explode_norm", 0),
        "explode_ratio": check_number(explode_ratio, "explode_ratio", 1),
        "saturation_threshold": check_number(
            saturation_threshold, "saturation_threshold", 0, 1, include_high=True
        ),
        "dead_threshold": check_number(dead_threshold, "dead_threshold", 0, 1, include_high=True),
        "slow_update_gap": check_number(slow_update_gap, "slow_update_gap", 1),
    }
    check_int(window, "window", minimum=1)
    check_choice(at, "at", WINDOW_ENDS)

    names = monitor.layer_names
    norms = _window_median(monitor.grad_norms(), window, at)
    ratio = first_last_ratio(monitor, first=window) if at == "start" else first_last_ratio(monitor, last=window)
    max_norm, max_layer = _worst(norms, names)
    saturated_fractions = _window_median(monitor.saturated_fractions(), window, at)
    saturated, saturated_layer = _worst(saturated_fractions, names)
    dead, dead_layer = _worst(_window_median(monitor.dead_fractions(), window, at), names)
    nonfinite = monitor.first_nonfinite()
    slowest_update, slowest_layer, update_gap = _slowest(_window_median(monitor.update_ratios(), window, at), names)

    fired = {
        "nonfinite": nonfinite is not None,
        "exploding": max_norm >= explode_norm or ratio >= explode_ratio,
        "dead": dead >= dead_threshold,
        "vanishing": ratio <= vanish_ratio,
    }
    problems = tuple(verdict for verdict in VERDICTS if fired.get(verdict, False))
    return Diagnosis(
        verdict=problems[0] if problems else "healthy",
        problems=problems,
        steps_used=min(window, monitor.steps),
        at=at,
        first_layer=names[0],
        last_layer=names[-1],
        grad_norm_ratio=ratio,
        max_grad_norm=max_norm,
        max_grad_layer=max_layer or names[-1],
        saturated_fraction=saturated,
        saturated_layer=saturated_layer,
        dead_fraction=dead,
        dead_layer=dead_layer,
        nonfinite=nonfinite,
        slowest_update_ratio=slowest_update,
        slowest_update_layer=slowest_layer,
        update_ratio_gap=update_gap,
        thresholds=thresholds,
    )
