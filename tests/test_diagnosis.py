"""Tests for vgcourse.diagnosis: each verdict on a network built to show it, and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vgcourse.data import Split, digits
from vgcourse.diagnosis import VERDICTS, Diagnosis, diagnose, first_last_ratio, first_last_ratios
from vgcourse.models import deep_mlp
from vgcourse.monitor import GradientMonitor
from vgcourse.training import task_loss, train


@pytest.fixture(scope="module")
def data() -> Split:
    return digits()


def trained(model: nn.Module, data: Split, **kwargs: object) -> GradientMonitor:
    with GradientMonitor(model) as mon:
        train(model, data, epochs=1, progress=False, **kwargs)
    return mon


def stepped(model: nn.Module, data: Split, steps: int, lr: float) -> GradientMonitor:
    """A few plain SGD steps on one batch (``train`` would stop at the first inf loss)."""
    x, y = data.x_train[:128], data.y_train[:128]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with GradientMonitor(model) as mon:
        for _ in range(steps):
            opt.zero_grad()
            task_loss(model(x), y).backward()
            opt.step()
    return mon


def test_deep_sigmoid_net_vanishes(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=20, width=32, activation="sigmoid"), data)
    result = diagnose(mon)
    assert isinstance(result, Diagnosis) and result.verdict == "vanishing"
    assert result.problems == ("vanishing",)
    assert result.grad_norm_ratio < 1e-6  # (1/4)^19 territory, far below the 1e-3 threshold
    assert (result.first_layer, result.last_layer) == ("layer 1", "layer 20")
    assert diagnose(mon, vanish_ratio=result.grad_norm_ratio / 2).verdict == "healthy"
    text = str(result)
    assert text.startswith("vanishing: the gradient norm of layer 1 is ")
    assert "× that of layer 20" in text and text.endswith(f"(median of the last {result.steps_used} steps)")
    # The readable form is the verdict and its evidence; the thresholds live in the field and the repr.
    assert "vanish_ratio" not in text and "threshold" not in text
    assert result.thresholds["vanish_ratio"] == 0.001 and "'vanish_ratio': 0.001" in repr(result)


def test_large_weights_explode(data: Split) -> None:
    model = deep_mlp(64, 10, depth=10, width=32, activation="relu", init="he", weight_scale=3.0)
    result = diagnose(stepped(model, data, steps=3, lr=1e-12))
    assert result.verdict == "exploding" and result.max_grad_norm > 1e3
    assert str(result).startswith("exploding: the largest gradient norm is ")


def test_gradients_growing_toward_the_input_explode(data: Split) -> None:
    # A tiny first layer feeding a huge second one: layer 1's gradient is ~1e6 times layer 2's.
    model = nn.Sequential(nn.Linear(64, 16), nn.Linear(16, 10))
    with torch.no_grad():
        model[0].weight.mul_(1e-4)
        model[0].bias.zero_()
        model[1].weight.mul_(1e2)
    mon = stepped(model, data, steps=2, lr=1e-9)
    assert diagnose(mon, explode_norm=1e12).verdict == "exploding"
    assert diagnose(mon, explode_norm=1e12).grad_norm_ratio > 1e3
    assert diagnose(mon, explode_norm=1e12, explode_ratio=1e12).verdict == "healthy"


def test_all_dead_relu_net_is_dead(data: Split) -> None:
    model = deep_mlp(64, 10, depth=4, width=32, activation="relu", init="he")
    with torch.no_grad():
        for layer in list(model)[:-1]:
            layer.linear.bias.fill_(-100.0)
    mon = trained(model, data)
    result = diagnose(mon)
    assert result.verdict == "dead" and result.dead_fraction == 1.0 and result.dead_layer == "layer 1"
    assert str(result).startswith("dead: 100% of layer 1's units are dead")
    assert diagnose(mon, dead_threshold=1.0).verdict == "dead"  # the threshold is inclusive


def test_shallow_he_relu_net_is_healthy(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=3, width=64, activation="relu", init="he"), data)
    result = diagnose(mon)
    assert result.verdict == "healthy" and result.problems == ()
    assert 1e-3 < result.grad_norm_ratio < 1e3 and result.dead_fraction < 0.9
    assert str(result).startswith("healthy: the gradient norm of layer 1 is ")
    # The same numbers judged with a stricter threshold: the thresholds are really used.
    stricter = diagnose(mon, explode_norm=0.99 * result.max_grad_norm)
    assert stricter.verdict == "exploding" and stricter.thresholds["explode_norm"] < result.max_grad_norm


def test_nonfinite_gradient_is_the_most_severe_verdict(data: Split) -> None:
    model = deep_mlp(64, 10, depth=3, width=16, activation="relu", init="he")
    x, y = data.x_train[:64], data.y_train[:64]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    def poison(grad: torch.Tensor) -> torch.Tensor:  # an inf in layer 3's gradient at step 2
        return grad.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor(math.inf)) if step == 2 else grad

    model[2].weight.register_hook(poison)
    with GradientMonitor(model) as mon:
        for step in range(4):
            opt.zero_grad()
            task_loss(model(x), y).backward()
            opt.step()
    result = diagnose(mon)
    assert result.verdict == "nonfinite" and result.nonfinite == (2, "layer 3")
    assert result.problems[0] == "nonfinite" and set(result.problems) <= set(VERDICTS)
    assert "step 2 in layer 3" in str(result)
    both = diagnose(mon, explode_norm=1e-9)  # exploding fires too, but nonfinite ranks first
    assert both.problems == ("nonfinite", "exploding") and both.verdict == "nonfinite"


def test_saturation_is_reported_with_its_threshold(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=6, width=32, activation="sigmoid", weight_scale=20.0), data)
    strict, loose = diagnose(mon), diagnose(mon, saturation_threshold=0.5)
    assert 0.5 <= strict.saturated_fraction < 0.9 and strict.saturated_layer is not None
    assert "saturated" not in str(strict)
    assert f"{strict.saturated_fraction:.0%} of {strict.saturated_layer}'s units are saturated" in str(loose)


def test_medians_use_the_last_window_steps(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=3, width=16, activation="relu", init="he"), data)
    assert diagnose(mon, window=5).steps_used == 5
    assert diagnose(mon, window=10_000).steps_used == mon.steps
    norms = mon.grad_norms()
    recent = norms[-5:]
    expected = np.median([first / last for first, last in zip(recent[:, 0], recent[:, -1])])
    assert diagnose(mon, window=5).grad_norm_ratio == pytest.approx(expected, rel=1e-9)
    everything = np.median([first / last for first, last in zip(norms[:, 0], norms[:, -1])])
    assert abs(everything - expected) > 1e-3 * expected  # so the window really mattered


def test_at_start_takes_medians_over_the_first_steps(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=3, width=16, activation="relu", init="he"), data)
    norms = mon.grad_norms()
    first = norms[:5]
    result = diagnose(mon, window=5, at="start")
    assert (result.steps_used, result.at) == (5, "start") and diagnose(mon).at == "end"
    assert result.grad_norm_ratio == pytest.approx(np.median([a / b for a, b in first[:, [0, -1]]]), rel=1e-9)
    assert result.grad_norm_ratio != pytest.approx(diagnose(mon, window=5).grad_norm_ratio, rel=1e-3)
    assert str(result).endswith("(median of the first 5 steps)")
    assert diagnose(mon, window=1, at="start").max_grad_norm == pytest.approx(norms[0].max(), rel=1e-9)


def test_an_explosion_that_kills_every_unit_is_exploding_at_the_start(data: Split) -> None:
    """ReLU + He with every weight quadrupled, 9 layers: one SGD step at lr 1e-3 sends every unit
    of a layer to 0 without an inf or NaN, so the last steps say "dead"; the first says why."""
    model = deep_mlp(64, 10, depth=9, width=64, activation="relu", init="he", weight_scale=4.0, seed=482796)
    with GradientMonitor(model, histograms=False, update_ratios=False) as mon:
        train(model, digits(seed=34), epochs=1, lr=1e-3, batch_size=32, progress=False, on_divergence="stop")
    assert diagnose(mon).verdict in ("dead", "nonfinite")  # dead here, on x86 at every kernel level
    start = diagnose(mon, window=1, at="start")
    assert start.verdict == "exploding" and start.max_grad_norm > 1e5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vanish_ratio": 0}, r"vanish_ratio must be a number in \(0, 1\), got 0"),
        ({"vanish_ratio": 1.5}, r"vanish_ratio must be a number in \(0, 1\), got 1.5"),
        ({"explode_ratio": 0.5}, r"explode_ratio must be a number in \(1, inf\), got 0.5"),
        ({"explode_norm": -1}, "explode_norm must be a positive finite number, got -1"),
        ({"dead_threshold": 1.1}, r"dead_threshold must be a number in \(0, 1\], got 1.1"),
        ({"saturation_threshold": "high"}, r"saturation_threshold .* got 'high'"),
        ({"window": 0}, "window must be a positive integer, got 0"),
        ({"at": "middle"}, r"at must be one of \['end', 'start'\], got 'middle'"),
    ],
)
def test_bad_thresholds_are_named(kwargs: dict, message: str) -> None:
    model = deep_mlp(4, 2, depth=2, width=4)
    with GradientMonitor(model) as mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
    with pytest.raises(ValueError, match=message):
        diagnose(mon, **kwargs)


def test_diagnose_needs_a_monitor_that_saw_steps() -> None:
    with pytest.raises(TypeError, match="monitor must be a GradientMonitor, got str"):
        diagnose("monitor")
    with GradientMonitor(deep_mlp(4, 2, depth=2, width=4)) as mon:
        pass
    with pytest.raises(ValueError, match="recorded no optimizer steps"):
        diagnose(mon)


# ---- first_last_ratio: the course's headline number ---------------------------------------


def test_first_last_ratio_is_the_median_of_per_step_ratios_not_the_ratio_of_medians() -> None:
    # layer 1 and layer 3 are noisy on different steps; each step's ratio is 0.01 except one
    norms = np.array([[1.0, 5.0, 100.0], [2.0, 5.0, 200.0], [4.0, 5.0, 400.0], [50.0, 5.0, 100.0]])
    assert first_last_ratio(norms) == pytest.approx(0.01)  # per-step ratios 0.01, 0.01, 0.01, 0.5
    assert np.median(norms[:, 0]) / np.median(norms[:, -1]) == pytest.approx(3 / 150)  # what it is not
    assert first_last_ratio(norms, last=1) == pytest.approx(0.5)
    assert first_last_ratio(norms, first=2) == pytest.approx(0.01)
    assert first_last_ratios(norms).tolist() == pytest.approx([0.01, 0.01, 0.01, 0.5])


def test_first_last_ratio_reads_a_monitor_and_skips_steps_without_gradient(data: Split) -> None:
    mon = trained(deep_mlp(64, 10, depth=3, width=16, activation="relu", init="he"), data)
    norms = mon.grad_norms()
    assert first_last_ratio(mon, last=7) == pytest.approx(float(np.median(norms[-7:, 0] / norms[-7:, 2])), rel=1e-12)
    assert first_last_ratio(np.array([[0.0, 0.0], [1.0, 4.0]])) == 0.25  # 0/0 on the first step
    assert math.isnan(first_last_ratio(np.zeros((0, 3))))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"last": 0}, "last must be a positive integer, got 0"), ({"first": 1.5}, "first must be a positive integer"),
     ({"last": 2, "first": 2}, "give last or first, not both")],
)
def test_first_last_ratio_rejects_bad_windows(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        first_last_ratio(np.ones((3, 2)), **kwargs)


def test_the_layer_whose_weights_barely_move_is_named_but_does_not_change_the_verdict(data: Split) -> None:
    deep = trained(deep_mlp(64, 10, depth=10, width=32, activation="sigmoid"), data, lr=0.3)
    result = diagnose(deep)
    ratios = np.nanmedian(deep.update_ratios()[-20:], axis=0)  # independent: the medians by hand
    assert result.slowest_update_layer == "layer 1" and int(np.nanargmin(ratios)) == 0
    assert result.slowest_update_ratio == pytest.approx(float(ratios[0]))
    assert result.update_ratio_gap == pytest.approx(float(np.median(ratios) / ratios[0]))
    assert result.update_ratio_gap > 1e3  # the first layer's weights move orders of magnitude less
    assert "layer 1's updates are " in str(result) and "× smaller than the median layer's" in str(result)
    quiet = diagnose(deep, slow_update_gap=result.update_ratio_gap * 2)
    assert quiet.verdict == result.verdict == "vanishing" and "updates" not in str(quiet)
    healthy = diagnose(trained(deep_mlp(64, 10, depth=3, width=32, activation="relu", init="he"), data, lr=0.1))
    assert healthy.update_ratio_gap < 100 and "updates" not in str(healthy)


def test_no_update_ratios_recorded_means_nothing_is_reported(data: Split) -> None:
    model = deep_mlp(64, 10, depth=4, width=16)
    with GradientMonitor(model, update_ratios=False) as mon:
        train(model, data, epochs=1, progress=False)
    result = diagnose(mon)
    assert result.slowest_update_layer is None and math.isnan(result.slowest_update_ratio)
    assert math.isnan(result.update_ratio_gap) and "updates" not in str(result)
    with pytest.raises(ValueError, match="slow_update_gap"):
        diagnose(mon, slow_update_gap=1.0)
