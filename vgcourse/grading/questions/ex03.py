"""Exercise 03, detection: per-layer gradient norms recorded with hooks, a stalled loss, and a gradient
profile read off a figure."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_globals

from vgcourse.data import digits
from vgcourse.grading.cases import random_float, random_int
from vgcourse.grading.calls import ex03 as calls
from vgcourse.grading.calls.ex03 import READING_NETWORKS, build_model, previous_grads, reading_network
from vgcourse.grading.question import Case, Question
from vgcourse.models import deep_mlp, layer_names, linear_layers
from vgcourse.probes.layers import layer_gradient_norms
from vgcourse.training import task_loss
from vgcourse.validation import is_real

HOOK_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")


# ---- record_grad_norms -------------------------------------------------------------------------


def _hook_cases(generator: torch.Generator) -> list[Case]:
    def case(depth: int, batch: int, classification: bool, prefilled: bool) -> Case:
        # Classification needs two classes at least: with one, cross-entropy is 0 and so is every gradient.
        in_features = random_int(generator, 2, 8)
        out_features = random_int(generator, 2, 5) if classification else random_int(generator, 1, 5)
        x = torch.randn(batch, in_features, generator=generator)
        if classification:
            y = torch.randint(0, out_features, (batch,), generator=generator)
        else:
            y = torch.randn(batch, out_features, generator=generator)
        return {
            "in_features": in_features, "out_features": out_features, "depth": depth,
            "width": random_int(generator, 3, 16),
            "activation": HOOK_ACTIVATIONS[random_int(generator, 0, len(HOOK_ACTIVATIONS) - 1)],
            "seed": random_int(generator, 0, 2**31 - 1),
            "x": x, "y": y,
            # Seed of the gradients already in .grad before the call (None: no .grad yet).
            "grad_seed": random_int(generator, 0, 2**31 - 1) if prefilled else None,
        }

    return [
        case(random_int(generator, 3, 6), random_int(generator, 2, 16), classification=True, prefilled=False),
        case(random_int(generator, 3, 6), random_int(generator, 2, 16), classification=True, prefilled=True),
        case(random_int(generator, 2, 6), random_int(generator, 2, 16), classification=False, prefilled=True),
        case(1, random_int(generator, 2, 8), classification=True, prefilled=False),  # a linear model
        case(random_int(generator, 2, 4), 1, classification=False, prefilled=False),  # batch of one
    ]


def _expected_hook(case: Case) -> dict[str, Any]:
    model = build_model(case)
    weights = [layer.weight for layer in linear_layers(model)]
    params = list(model.parameters())
    loss = task_loss(model(case["x"]), case["y"])
    grads = torch.autograd.grad(loss, params)
    by_param = {id(p): g for p, g in zip(params, grads)}
    return {
        "norms": {name: float(by_param[id(w)].norm()) for name, w in zip(layer_names(model), weights)},
        "grads_before": previous_grads(model, case),
        "grads_new": list(grads),
    }


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6)


def _compare_hook(got: Any, want: dict[str, Any], case: Case) -> str | None:
    norms = got["norms"]
    if set(norms) != set(want["norms"]):
        return (f"expected one entry per linear layer with keys {sorted(want['norms'])} "
                f"(from vgcourse.models.layer_names), got keys {sorted(norms)}")
    largest = max(want["norms"].values())
    for name, value in want["norms"].items():
        given = norms[name]
        if isinstance(given, Tensor) and given.numel() == 1:
            given = float(given)
        if not is_real(given):
            return f"the value for {name!r} should be a float, got {type(given).__name__}"
        if not abs(given - value) <= 1e-4 * abs(value) + 1e-8 * largest:
            return (f"gradient norm of {name!r}: expected {value:.6g}, got {given:.6g} "
                    "(the L2 norm of ∂loss/∂weight from this one backward pass, with the course's task_loss)")
    if got["hooks_left"] != 0:
        return (f"{got['hooks_left']} hook(s) still registered after record_grad_norms returned; "
                "keep every handle that register_…hook returns and call handle.remove() (in a finally block)")
    for index, (after, before, new) in enumerate(zip(got["grads_after"], want["grads_before"], want["grads_new"])):
        if before is None:
            if after is None or _close(after, new):
                continue
        elif after is not None and (_close(after, before) or _close(after, before + new)):
            continue
        state = "was emptied" if after is None else "holds something else"
        return (f"after your function, the .grad of parameter {index} {state}: the gradients already "
                "accumulated in .grad must be kept (a backward pass may add to them; never zero them)")
    return None


# ---- loss_stalled ------------------------------------------------------------------------------


def _curve(generator: torch.Generator, length: int) -> list[float]:
    """A positive, noisy, roughly decreasing loss curve at a random scale."""
    scale = 10 ** random_float(generator, -3, 3)
    rate = random_float(generator, 0.0, 0.3)
    noise = random_float(generator, 0.0, 0.2)
    values = []
    for step in range(length):
        wobble = 1 + noise * (2 * random_float(generator, 0, 1) - 1)
        values.append(scale * (0.2 + 0.8 * 2.718281828459045 ** (-rate * step)) * wobble)
    return values


def _stalled(case: Case) -> bool:
    losses, window, rho = case["losses"], case["window"], case["min_improvement"]
    if len(losses) < window + 1:
        return False
    before, recent = min(losses[:-window]), min(losses[-window:])
    return before - recent < rho * before


def _stall_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    # Boundary, exact in binary: best before 2.0, best recent 1.5, improvement exactly 25 %.
    # Not stalled at min_improvement 0.25 (the improvement is not *less* than 25 %), stalled just above.
    scale = 2.0 ** random_int(generator, -4, 4)
    window = random_int(generator, 2, 5)
    head = [4.0, 3.0, 2.0, 2.5][: random_int(generator, 1, 4)]
    head = head if 2.0 in head else head + [2.0]
    tail = [1.75] * (window - 1) + [1.5]
    order = torch.randperm(window, generator=generator).tolist()
    tail = [tail[i] for i in order]
    losses = [scale * v for v in head + tail]
    cases.append({"losses": losses, "window": window, "min_improvement": 0.25})
    cases.append({"losses": losses, "window": window, "min_improvement": 0.375})
    # Too short: exactly `window` values, and none at all -> False.
    window = random_int(generator, 2, 8)
    cases.append({"losses": _curve(generator, window), "window": window, "min_improvement": 0.01})
    cases.append({"losses": [], "window": window, "min_improvement": 0.01})
    # Shortest usable history: window + 1 values, flat -> stalled.
    window = random_int(generator, 1, 6)
    cases.append({"losses": [3.0] * (window + 1), "window": window, "min_improvement": 0.001})
    # Best recent value is not the last one (a noisy dip), and worse recent values -> stalled.
    window = random_int(generator, 3, 6)
    dip = random_int(generator, 0, window - 2)
    recent = [1.0 + 0.5 * random_float(generator, 0, 1) for _ in range(window)]
    recent[dip] = 0.5
    cases.append({"losses": [2.0, 1.6, 1.2] + recent, "window": window, "min_improvement": 0.5 - 1e-3})
    cases.append({"losses": [1.0, 0.9] + [1.2 + random_float(generator, 0, 1) for _ in range(window)],
                  "window": window, "min_improvement": 0.01})
    # A small relative improvement that is large in absolute terms -> stalled.
    window = random_int(generator, 2, 6)
    cases.append({"losses": [100.0, 90.0] + [90.0 - random_float(generator, 0.1, 0.8) for _ in range(window)],
                  "window": window, "min_improvement": 0.01})
    # Random curves at random scales, away from the boundary.
    while len(cases) < 15:
        length = random_int(generator, 5, 60)
        case = {"losses": _curve(generator, length), "window": random_int(generator, 1, 12),
                "min_improvement": 10 ** random_float(generator, -3, -0.7)}
        if len(case["losses"]) > case["window"]:
            before, recent = min(case["losses"][: -case["window"]]), min(case["losses"][-case["window"]:])
            if abs((before - recent) / before - case["min_improvement"]) < 1e-6:
                continue
        cases.append(case)
    return cases


def _compare_bool(got: Any, want: bool, case: Case) -> str | None:
    if not isinstance(got, bool):
        return f"return a Python bool (True or False), got {type(got).__name__}"
    if got != want:
        return f"expected {want}, got {got}"
    return None


# ---- read_the_plot ---------------------------------------------------------------------------

READING_TOLERANCE = 0.5
"""How far (in powers of ten) a reading may sit from the measured value and still pass."""


def _reading_cases(generator: torch.Generator) -> list[Case]:
    order = torch.randperm(len(READING_NETWORKS), generator=generator).tolist()
    labels = list(READING_NETWORKS)
    return [{"network": labels[i]} for i in order]


def _measured_orders(case: Case) -> float:
    data = digits(seed=0)  # the figure's batch: the first 256 training digits
    norms = layer_gradient_norms(reading_network(case["network"]), data.x_train[:256], data.y_train[:256])
    return math.log10(norms[0] / norms[-1])


def _compare_reading(got: Any, measured: float, case: Case) -> str | None:
    if isinstance(got, Tensor) and got.numel() == 1:
        got = float(got)
    if not is_real(got):
        return f"expected a number (a power of ten read off the figure), got {type(got).__name__}"
    if not abs(got - measured) <= READING_TOLERANCE:
        side = "too high" if got > measured else "too low"
        return (f"your reading {got:g} for {case['network']!r} is {side}: more than half a power of ten "
                "from the curve")
    return None


QUESTIONS = (
    Question(
        answer=calls.HOOK,
        points=3,
        task="return {layer name: ‖∂loss/∂W‖} for every linear layer, recorded with hooks that are "
             "all removed before returning",
        hint="Register a hook on each linear layer's weight (weight.register_hook(fn) receives this "
             "pass's gradient), run task_loss(model(x), y).backward(), then remove every handle. "
             "Keys come from vgcourse.models.layer_names(model), in the order of linear_layers(model). "
             "Don't read .grad: it may already hold gradients from an earlier backward pass.",
        cases=_hook_cases,
        expected=_expected_hook,
        compare=_compare_hook,
    ),
    Question(
        answer=calls.STALLED,
        points=2,
        task="return True when the best of the last `window` losses improves on the best before them "
             "by less than the fraction `min_improvement`",
        hint="With fewer than window + 1 losses return False. Compare min(losses[-window:]) with "
             "min(losses[:-window]) = b: stalled when b − recent < min_improvement · b "
             "(an improvement of exactly that fraction is not a stall).",
        cases=_stall_cases,
        expected=_stalled,
        compare=_compare_bool,
    ),
    Question(
        answer=calls.READING,
        points=1,
        task="return log10(‖∂L/∂W‖ of layer 1 / ‖∂L/∂W‖ of layer 10) for each network of the figure, "
             "read off the figure (negative when layer 1 gets less)",
        hint="The y-axis is logarithmic: its labels are powers of ten, and equal steps are equal factors. "
             "For each curve read its value at layer 1 and at layer 10, and count the powers of ten between "
             "them, negative if layer 1 is lower: layer 1 at 10⁻⁵ and layer 10 at 10⁻¹ would give −4. "
             "Half a power of ten either way passes.",
        cases=_reading_cases,
        expected=_measured_orders,
        compare=_compare_reading,
    ),
)
