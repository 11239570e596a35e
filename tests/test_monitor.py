"""Tests for vgcourse.monitor: hooks, layer order and names, recorded statistics, errors."""

from __future__ import annotations

import gc
import pickle
import weakref
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

from vgcourse.activations import saturated_fraction
from vgcourse.data import digits
from vgcourse.models import deep_mlp, sequence_model
from vgcourse.monitor import DIAGNOSIS, EVERYTHING, NORMS_ONLY, GradientMonitor, MonitorOptions
from vgcourse.records import Histogram
from vgcourse.probes.layers import activation_outputs
from vgcourse.training import task_loss, train


def module_hooks(model: nn.Module) -> int:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, kind)) for m in model.modules() for kind in kinds)


def tensor_hooks(model: nn.Module) -> int:
    return sum(len(p._backward_hooks or {}) for p in model.parameters())


def global_hooks() -> tuple[int, int]:
    return len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks)


def small_mlp(activation: str = "tanh", **kwargs: object) -> nn.Module:
    return deep_mlp(6, 3, depth=4, width=16, activation=activation, **kwargs)


def batch(n: int = 32, features: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def sgd_steps(model: nn.Module, steps: int, lr: float = 0.05) -> torch.optim.Optimizer:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        x, y = batch(seed=step)
        opt.zero_grad()
        task_loss(model(x), y).backward()
        opt.step()
    return opt


# ---- hooks are removed --------------------------------------------------------------------


def test_hooks_removed_after_with_block() -> None:
    model, before = small_mlp(), global_hooks()
    with GradientMonitor(model) as mon:
        assert module_hooks(model) > 0 and global_hooks() == (before[0] + 1, before[1] + 1)
        sgd_steps(model, 2)
    assert module_hooks(model) == 0 and global_hooks() == before and tensor_hooks(model) == 0
    assert mon.steps == 2


def test_hooks_removed_after_close_and_nothing_recorded_afterwards() -> None:
    model, before = small_mlp(), global_hooks()
    mon = GradientMonitor(model)
    sgd_steps(model, 1)
    mon.close()
    mon.close()  # closing twice is harmless
    assert module_hooks(model) == 0 and global_hooks() == before and tensor_hooks(model) == 0
    sgd_steps(model, 3)
    assert mon.steps == 1 and mon.grad_norms().shape == (1, 4)


def test_hooks_removed_when_the_body_raises() -> None:
    model, before = small_mlp(), global_hooks()
    with pytest.raises(RuntimeError, match="boom"):
        with GradientMonitor(model):
            sgd_steps(model, 1)
            raise RuntimeError("boom")
    assert module_hooks(model) == 0 and global_hooks() == before and tensor_hooks(model) == 0


# ---- layers: which, in what order, under what names ---------------------------------------


def test_deep_mlp_layers_use_course_names_in_forward_order() -> None:
    model = small_mlp()
    with GradientMonitor(model, hist_every=7, bins=12, saturation_margin=0.1) as mon:
        assert mon.layer_names == ["layer 1", "layer 2", "layer 3", "layer 4"]
    assert (mon.model, mon.hist_every, mon.bins, mon.saturation_margin) == (model, 7, 12, 0.1)


class OutputFirst(nn.Module):
    """Registers its output layer first, so registration order is not forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.body = nn.Linear(6, 8)
        self.norm = nn.BatchNorm1d(8)  # a 1-D weight: not a layer
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.norm(self.body(x))))


def test_custom_module_layers_follow_forward_order() -> None:
    model = OutputFirst()
    with GradientMonitor(model) as mon:
        assert mon.layer_names == ["head", "body"]  # before any forward: registration order
        sgd_steps(model, 2)
    assert mon.layer_names == ["body", "head"]
    norms = mon.grad_norms()
    assert norms.shape == (2, 2)
    dead = mon.dead_fractions()  # the ReLU is credited to "body", the layer before it
    assert np.all(np.isfinite(dead[:, 0])) and np.all(np.isnan(dead[:, 1]))


def test_sequential_names_and_rnn_recurrent_weights() -> None:
    seq = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    with GradientMonitor(seq) as mon:
        assert mon.layer_names == ["0 (Linear)", "2 (Linear)"]
    rnn = sequence_model(2, 8, 1, cell="gru", num_layers=2)
    x, y = torch.randn(4, 5, 2), torch.randn(4, 1)
    with GradientMonitor(rnn) as mon:
        opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
        task_loss(rnn(x), y).backward()
        expected = rnn.core.weight_hh_l1.grad.norm().item()
        opt.step()
    assert mon.layer_names == ["core.weight_ih_l0", "core.weight_hh_l0", "core.weight_ih_l1", "core.weight_hh_l1",
                               "readout"]
    assert mon.grad_norms()[0, 3] == pytest.approx(expected, rel=1e-5)


def test_shared_activation_module_is_credited_to_each_layer() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.act = nn.Linear(6, 8), nn.Linear(8, 8), nn.Sigmoid()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.b(self.act(self.a(x))))

    model = Shared()
    x, _ = batch()
    with GradientMonitor(model) as mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(x).sum().backward()
        with torch.no_grad():
            first = torch.sigmoid(model.a(x))
            second = torch.sigmoid(model.b(first))
        opt.step()
    np.testing.assert_allclose(
        mon.activation_means()[0], [first.mean().item(), second.mean().item()], rtol=1e-5
    )


# ---- recorded statistics ------------------------------------------------------------------


def test_grad_norms_match_the_grads_and_work_with_trains_own_optimizer() -> None:
    data = digits()
    model = deep_mlp(64, 10, depth=3, width=16, activation="relu", init="he")
    with GradientMonitor(model) as mon:
        train(model, data, epochs=1, batch_size=256, progress=False)
    assert mon.steps == math.ceil(len(data.x_train) / 256)  # evaluation passes are not steps
    # The grads of the last step are still on the model: train() does not clear them after.
    expected = [model[i].linear.weight.grad.norm().item() for i in range(2)]
    expected.append(model[2].weight.grad.norm().item())
    np.testing.assert_allclose(mon.grad_norms()[-1], expected, rtol=1e-5)
    assert mon.grad_norms().shape == (mon.steps, 3)


def test_update_ratios_match_a_manual_computation() -> None:
    model = small_mlp()
    weights = [layer.linear.weight for layer in list(model)[:-1]] + [model[-1].weight]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    expected = []
    with GradientMonitor(model, ratio_every=1) as mon:
        for step in range(3):
            x, y = batch(seed=step)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            before = [w.detach().clone() for w in weights]
            opt.step()
            expected.append([((w - b).norm() / b.norm()).item() for w, b in zip(weights, before)])
    np.testing.assert_allclose(mon.update_ratios(), expected, rtol=1e-4)
    assert np.all(mon.update_ratios() > 0)


def test_update_ratios_every_tenth_step_by_default_and_the_copy_is_not_kept() -> None:
    """Issue 15, defect 9: the default kept a copy of every weight for the whole run."""
    model = small_mlp()
    with GradientMonitor(model) as mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        expected = {}
        for step in range(25):
            x, y = batch(seed=step)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            before = model.layer1.linear.weight.detach().clone()
            opt.step()
            expected[step] = float((model.layer1.linear.weight.detach() - before).norm() / before.norm())
            assert (len(mon._snapshot) > 0) == (step % 10 == 0)  # held from a measured step to the next only
    ratios = mon.update_ratios()
    measured = np.flatnonzero(np.isfinite(ratios).all(axis=1)).tolist()
    assert measured == [0, 10, 20] and np.isnan(ratios[[1, 9, 11, 24]]).all()
    np.testing.assert_allclose(ratios[measured, 0], [expected[s] for s in measured], rtol=1e-5)


def test_frozen_layers_and_a_failed_optimizer_step_keep_rows_aligned() -> None:
    model = small_mlp()
    model[0].linear.weight.requires_grad_(False)  # frozen: not a layer to judge

    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    calls = []

    def fail_second_step(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        calls.append(1)  # runs after the monitor's global pre-step hook
        if len(calls) == 2:
            raise RuntimeError("step failed")

    opt.register_step_pre_hook(fail_second_step)
    with GradientMonitor(model, ratio_every=1) as mon:
        for step in range(4):
            x, y = batch(seed=step)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            try:
                opt.step()
            except RuntimeError:
                pass
    assert mon.steps == 4 and mon.update_ratios().shape == (4, 3) and "layer 1" not in mon.layer_names
    ratios = mon.update_ratios()
    assert np.all(np.isnan(ratios[1])) and np.all(np.isfinite(ratios[[0, 2, 3]]))
    assert np.all(mon.grad_norms() > 0) and np.all(ratios[[0, 2, 3]] > 0)
    assert "layer 1" not in {h.layer for h in mon.histograms("grad")}


def test_only_optimizers_of_the_monitored_model_count() -> None:
    model, other = small_mlp(), small_mlp()
    with GradientMonitor(model) as mon:
        sgd_steps(other, 3)
        sgd_steps(model, 2)
    assert mon.steps == 2


def test_forward_passes_without_autograd_are_ignored() -> None:
    model = small_mlp()
    (x, y), (x_eval, _) = batch(seed=1), batch(seed=2)
    with GradientMonitor(model) as mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        task_loss(model(x), y).backward()
        with torch.no_grad():
            expected = torch.tanh(model[0].linear(x))
            model(x_eval)  # an evaluation pass between backward and step
        opt.step()
    assert mon.activation_means()[0, 0] == pytest.approx(expected.mean().item(), rel=1e-5)
    assert mon.activation_stds()[0, 0] == pytest.approx(expected.std().item(), rel=1e-5)


def test_histograms_recorded_exactly_every_hist_every_steps() -> None:
    model = small_mlp("sigmoid")
    x, y = batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model, hist_every=3, bins=10) as mon:
        for step in range(7):
            opt.zero_grad()
            task_loss(model(x), y).backward()
            if step == 3:
                grad = model[1].linear.weight.grad.clone()
            opt.step()
    grads = mon.histograms("grad")
    assert [(h.step, h.layer) for h in grads] == [(s, f"layer {k}") for s in (0, 3, 6) for k in range(1, 5)]
    hist = grads[5]  # step 3, layer 2
    assert isinstance(hist, Histogram) and hist.counts.shape == (10,) and hist.edges.shape == (11,)
    limit = grad.abs().max().item()
    np.testing.assert_allclose(hist.edges[[0, -1]], [-limit, limit], rtol=1e-6)
    assert hist.counts.sum() == grad.numel()
    reference, _ = np.histogram(grad.numpy(), bins=hist.edges)
    assert np.abs(hist.counts - reference).sum() <= 2  # at most a rounding at a bin edge
    acts = mon.histograms("activation")
    assert [(h.step, h.layer) for h in acts] == [(s, f"layer {k}") for s in (0, 3, 6) for k in range(1, 4)]
    assert acts[0].edges[0] == 0 and acts[0].edges[-1] == 1  # sigmoid bins span [0, 1]
    assert all(h.counts.sum() == len(x) * 16 for h in acts)


def test_saturated_fraction_matches_activations_module() -> None:
    model = small_mlp("sigmoid", weight_scale=6.0)
    x, y = batch()
    outputs = [out for _, _, out in activation_outputs(model, x)]
    expected = [saturated_fraction("sigmoid", out) for out in outputs]
    wide = [saturated_fraction("sigmoid", out, margin=0.2) for out in outputs]
    with GradientMonitor(model) as mon, GradientMonitor(model, saturation_margin=0.2) as wide_mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        task_loss(model(x), y).backward()
        opt.step()
    fractions = mon.saturated_fractions()[0]
    np.testing.assert_allclose(fractions[:3], expected, rtol=1e-6)
    np.testing.assert_allclose(wide_mon.saturated_fractions()[0, :3], wide, rtol=1e-6)
    assert all(w > e for w, e in zip(wide, expected))  # the margin really matters here
    assert 0 < min(expected) and max(expected) < 1  # a case where the count is not trivial
    assert np.isnan(fractions[3])  # the linear output layer has no activation
    assert np.all(np.isnan(mon.dead_fractions()))  # sigmoid units are never "dead"


def test_dead_fraction_counts_units_silent_on_the_whole_batch() -> None:
    model = small_mlp("relu", init="he")
    with torch.no_grad():
        for layer in list(model)[:-1]:
            layer.linear.bias.fill_(-100.0)
        model[1].linear.bias[:4] = 1.0  # layer 2: 4 of 16 units always on
    with GradientMonitor(model) as mon:
        sgd_steps(model, 2)
    dead = mon.dead_fractions()
    np.testing.assert_allclose(dead[:, :3], [[1.0, 12 / 16, 1.0]] * 2)
    assert np.all(np.isnan(dead[:, 3])) and np.all(np.isnan(mon.saturated_fractions()))
    assert np.all(mon.grad_norms()[:, 0] == 0)  # dead units pass no gradient at all


def test_first_nonfinite_reports_the_first_step_and_forward_layer() -> None:
    model = small_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    def poison(value: float) -> object:  # what backward leaves at step 3 is what is recorded
        def hook(grad: torch.Tensor) -> torch.Tensor:
            return grad.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor(value)) if step == 3 else grad
        return hook

    model[3].weight.register_hook(poison(math.inf))
    model[1].linear.weight.register_hook(poison(math.nan))
    with GradientMonitor(model) as mon:
        for step in range(5):
            x, y = batch(seed=step)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            opt.step()
        assert mon.first_nonfinite() == (3, "layer 2")
    assert np.all(np.isfinite(mon.grad_norms()[:3]))


def test_flags_turn_off_histograms_activation_statistics_and_update_ratios() -> None:
    model = small_mlp()
    with GradientMonitor(model, histograms=False, activations=False, ratio_every=1) as mon:
        assert module_hooks(model) == 4  # one per layer, none on activations or the root
        sgd_steps(model, 2)
    assert mon.histograms("grad") == [] and mon.histograms("activation") == []
    assert np.all(np.isnan(mon.activation_means())) and mon.activation_means().shape == (2, 4)
    assert np.all(np.isfinite(mon.grad_norms())) and np.all(np.isfinite(mon.update_ratios()))
    with GradientMonitor(model, update_ratios=False) as lean:
        sgd_steps(model, 2)
    assert lean.update_ratios().shape == (2, 4) and np.all(np.isnan(lean.update_ratios()))
    assert np.all(np.isfinite(lean.grad_norms())) and np.all(np.isfinite(lean.activation_means()[:, :3]))


def test_activation_histograms_without_per_step_activation_statistics() -> None:
    model = small_mlp("tanh")
    with GradientMonitor(model, hist_every=2, activations=False) as mon:
        sgd_steps(model, 3)
    acts = mon.histograms("activation")
    assert [h.step for h in acts] == [0, 0, 0, 2, 2, 2]
    assert acts[0].edges[0] == -1 and acts[0].edges[-1] == 1  # tanh bins span [-1, 1]
    assert np.all(np.isnan(mon.activation_stds()))


def test_std_is_accurate_when_it_is_tiny_next_to_the_mean() -> None:
    # A layer whose outputs barely vary: the one-pass formula E[x²] - E[x]² would cancel.
    model = nn.Sequential(nn.Linear(6, 64), nn.Sigmoid(), nn.Linear(64, 1))
    with torch.no_grad():
        model[0].weight.mul_(1e-3)
        model[0].bias.fill_(1.0)
    x, _ = batch(n=128)
    with GradientMonitor(model) as mon:
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        model(x).sum().backward()
        expected = torch.sigmoid(model[0](x).double()).std().item()
        opt.step()
    assert expected < 1e-3 * 0.73  # std / mean below 1e-3
    assert mon.activation_stds()[0, 0] == pytest.approx(expected, rel=1e-3)


def test_a_forgotten_monitor_on_a_live_model_records_nothing_and_leaves_no_hook() -> None:
    model, before = small_mlp(), global_hooks()  # the model stays alive; only the monitor goes
    GradientMonitor(model)  # never closed
    probe = GradientMonitor(model)  # a second, forgotten one, as a re-run notebook cell makes
    table = probe._table
    del probe
    gc.collect()
    assert module_hooks(model) == 0 and global_hooks() == before and tensor_hooks(model) == 0
    sgd_steps(model, 2)  # forward, backward and step on the live model
    assert len(table) == 0  # the dropped monitor did not record these steps


def test_a_closed_monitor_kept_alive_records_nothing_on_a_live_model() -> None:
    model = small_mlp()
    with GradientMonitor(model) as mon:
        sgd_steps(model, 1)
    sgd_steps(model, 2)
    assert mon.steps == 1 and len(mon._table) == 1 and tensor_hooks(model) == 0


def test_module_hooks_do_not_hold_the_monitor() -> None:
    model = small_mlp()
    mon = GradientMonitor(model)
    ref = weakref.ref(mon)
    del mon
    gc.collect()
    assert ref() is None  # the model's hooks kept no strong reference to it


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_records_stay_on_the_gpu_until_queried() -> None:
    model = small_mlp().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as mon:
        x, y = batch()
        task_loss(model(x.cuda()), y.cuda()).backward()
        opt.step()
        assert mon._grad_rows[0].is_cuda
    assert np.all(np.isfinite(mon.grad_norms()))


# ---- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"hist_every": 0}, ValueError, "hist_every must be a positive integer, got 0"),
        ({"hist_every": 2.5}, ValueError, "hist_every must be a positive integer, got 2.5"),
        ({"bins": True}, ValueError, "bins must be a positive integer, got True"),
        ({"saturation_margin": 0.5}, ValueError, r"saturation_margin must be a number in \(0, 0.5\), got 0.5"),
        ({"saturation_margin": 0}, ValueError, "saturation_margin .* got 0"),
        ({"histograms": "yes"}, ValueError, "histograms must be True or False, got 'yes'"),
        ({"update_ratios": 1}, ValueError, "update_ratios must be True or False, got 1"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type, message: str) -> None:
    model, before = small_mlp(), global_hooks()
    with pytest.raises(error, match=message):
        GradientMonitor(model, **kwargs)
    assert module_hooks(model) == 0 and global_hooks() == before and tensor_hooks(model) == 0  # nothing left half-attached


def test_bad_model_and_bad_histogram_kind() -> None:
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        GradientMonitor("model")
    with pytest.raises(ValueError, match="ReLU has no layer to monitor"):
        GradientMonitor(nn.ReLU())
    with GradientMonitor(small_mlp()) as mon:
        message = r"kind must be one of \['grad', 'activation'\], got 'weights'"
        with pytest.raises(ValueError, match=message):
            mon.histograms("weights")


@pytest.mark.parametrize("update_ratios", [False, True])
def test_tiny_gradients_are_not_rounded_to_zero(update_ratios: bool) -> None:
    # entries of 1e-27 square to 1e-54, below float32's range: a float32 norm would say 0
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with GradientMonitor(model, histograms=False, activations=False, update_ratios=update_ratios) as mon:
        for p in model.parameters():
            p.grad = torch.full_like(p, 1e-27)
        model[1].weight.grad.zero_()
        opt.step()
    norms = mon.grad_norms()[0]
    assert norms[0] == pytest.approx(4e-27, rel=1e-6)  # sqrt(16) * 1e-27
    assert norms[1] == 0.0  # exactly 0 only when every entry is


def test_huge_gradients_are_not_rounded_to_infinity() -> None:
    # entries of 1e25 square to 1e50, above float32's range: a float32 norm would say inf
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with GradientMonitor(model, NORMS_ONLY) as mon:
        for p in model.parameters():
            p.grad = torch.full_like(p, 1e25)
        opt.step()
    assert mon.grad_norms()[0] == pytest.approx([4e25, 2e25], rel=1e-6)
    assert mon.total_grad_norms()[0] == pytest.approx(math.sqrt(16 + 4 + 4 + 1) * 1e25, rel=1e-6)


# ---- options and presets ------------------------------------------------------------------


def test_norms_only_preset_records_gradient_norms_and_nothing_else() -> None:
    model = small_mlp()
    with GradientMonitor(model, NORMS_ONLY) as mon:
        sgd_steps(model, 2)
    assert np.isfinite(mon.grad_norms()).all() and mon.grad_norms().shape == (2, 4)
    assert np.isnan(mon.update_ratios()).all() and np.isnan(mon.activation_means()).all()
    assert mon.histograms("grad") == [] and mon.histograms("activation") == []


def test_diagnosis_preset_keeps_activation_statistics_only() -> None:
    model = small_mlp("sigmoid")
    with GradientMonitor(model, DIAGNOSIS) as mon:
        sgd_steps(model, 2)
    assert np.isfinite(mon.saturated_fractions()[:, :3]).all()  # the three sigmoid layers
    assert np.isnan(mon.update_ratios()).all() and mon.histograms() == []


def test_keyword_changes_apply_on_top_of_a_preset() -> None:
    mon = GradientMonitor(small_mlp(), NORMS_ONLY, histograms=True, hist_every=7)
    mon.close()
    assert mon.options == MonitorOptions(hist_every=7, activations=False, update_ratios=False)
    assert (mon.hist_every, EVERYTHING.hist_every, NORMS_ONLY.histograms) == (7, 50, False)  # presets untouched
    with pytest.raises(TypeError, match=r"unknown monitor option\(s\) \['hist_evry'\]"):
        GradientMonitor(small_mlp(), hist_evry=7)
    with pytest.raises(TypeError, match="options must be a vgcourse.monitor.MonitorOptions, got dict"):
        GradientMonitor(small_mlp(), {"histograms": False})


def _fine_tune() -> nn.Module:
    """A small CNN classifier with its convolutional backbone frozen, as in a fine-tune."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten())
    backbone.requires_grad_(False)
    return nn.Sequential(backbone, nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10))


def test_frozen_layers_are_not_layers_to_judge() -> None:
    """Issue 15, defect 3: a frozen backbone was recorded as norm 0 and diagnosed "vanishing"."""
    from vgcourse.diagnosis import diagnose

    model = _fine_tune()
    x, y = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    with GradientMonitor(model) as monitor:
        for _ in range(5):
            optimizer.zero_grad()
            task_loss(model(x), y).backward()
            optimizer.step()
    assert monitor.layer_names == ["1 (Linear)", "3 (Linear)"]  # the two linear layers; the convolutions are frozen
    assert (monitor.grad_norms() > 0).all()
    assert diagnose(monitor, window=5).verdict == "healthy"
    model[1].requires_grad_(False)
    model[3].requires_grad_(False)
    with pytest.raises(ValueError, match="all are frozen"):
        GradientMonitor(model)


class _TextModel(nn.Module):
    """Embedding, GRU-free bag of words: variable-length batches of token ids -> 4 classes."""

    def __init__(self, sparse: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(100, 16, sparse=sparse)
        self.hidden = nn.Linear(16, 16)
        self.act = nn.Tanh()
        self.out = nn.Linear(16, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(self.embed(tokens)))).mean(dim=1)


def _text_batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 200, (steps,), generator=generator).tolist()  # dynamic padding: a new shape each step
    return [(torch.randint(0, 100, (8, n), generator=generator), torch.randint(0, 4, (8,), generator=generator))
            for n in lengths]


def test_inputs_of_varying_shapes_do_not_grow_memory() -> None:
    """Issue 15, defect 1: one scratch buffer was kept per activation shape, forever."""
    model = _TextModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = _text_batches(60)
    with GradientMonitor(model) as monitor:
        for tokens, labels in batches:
            optimizer.zero_grad()
            task_loss(model(tokens), labels).backward()
            optimizer.step()
        scratch = dict(monitor._scratch)
    assert monitor.steps == 60 and len({tokens.shape for tokens, _ in batches}) > 30
    assert len(scratch) == 1  # one buffer per dtype and device, not one per shape
    (buffer, _), = scratch.values()
    assert buffer.numel() == max(8 * tokens.shape[1] * 16 for tokens, _ in batches)  # the largest output


def test_a_sparse_embedding_is_measured_and_training_goes_on() -> None:
    """Issue 15, defect 2: a sparse gradient raised NotImplementedError from inside optimizer.step()."""
    model = _TextModel(sparse=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    (tokens, labels), = _text_batches(1)
    with GradientMonitor(model) as monitor:
        for _ in range(3):
            optimizer.zero_grad()
            task_loss(model(tokens), labels).backward()
            optimizer.step()
    assert model.embed.weight.grad.is_sparse
    expected = model.embed.weight.grad.coalesce().values().double().norm().item()
    assert monitor.steps == 3 and monitor.grad_norms()[-1, 0] == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(monitor.grad_norms()).all()


def test_what_the_monitor_cannot_measure_it_skips_once_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, defect 2: an error inside the monitor must never stop the user's training."""
    import vgcourse.monitor as monitor_module

    def broken(*args: object, **kwargs: object) -> None:
        raise NotImplementedError("no sharding strategy for aten._foreach_norm")

    model = small_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monkeypatch.setattr(monitor_module.torch, "_foreach_norm", broken)
    monkeypatch.setattr(monitor_module.torch, "_foreach_copy_", broken)
    original = torch.linalg.vector_norm
    monkeypatch.setattr(monitor_module.torch.linalg, "vector_norm",
                        lambda t, *a, **k: broken() if t.dim() == 2 and t.shape[0] == 16 else original(t, *a, **k))
    with pytest.warns(RuntimeWarning) as caught, GradientMonitor(model) as monitor:
        for step in range(3):
            x, y = batch(seed=step)
            optimizer.zero_grad()
            task_loss(model(x), y).backward()
            optimizer.step()  # never raises
    messages = [str(w.message) for w in caught]
    assert monitor.steps == 3 and len(messages) == len(set(messages))  # each said once
    assert any("the update ratios" in m for m in messages)
    assert any("norm of 'layer" in m and "NotImplementedError: no sharding strategy" in m for m in messages)
    norms = monitor.grad_norms()
    assert np.isnan(norms).any() and np.isfinite(norms).any()  # what could be measured was


def test_two_optimizers_or_a_nested_one_make_one_step_not_two() -> None:
    """Issue 15, defect 6: each optimizer.step() counted, so two optimizers doubled the steps and
    every other update ratio read 0."""
    model = small_mlp()
    halves = list(model.parameters())
    first, second = torch.optim.SGD(halves[:4], lr=0.1), torch.optim.Adam(halves[4:], lr=1e-2)
    with GradientMonitor(model, ratio_every=1) as monitor:
        for step in range(5):
            x, y = batch(seed=step)
            first.zero_grad()
            second.zero_grad()
            task_loss(model(x), y).backward()
            first.step()
            second.step()
    assert monitor.steps == 5 and monitor.grad_norms().shape == (5, 4)
    assert (monitor.update_ratios() > 0).all()  # each layer moved, whichever optimizer moved it

    class Outer(torch.optim.SGD):  # a wrapper whose step runs an inner optimizer (as ZeRO's does)
        def __init__(self, params: list, inner: torch.optim.Optimizer) -> None:
            super().__init__(params, lr=0.0)
            self.inner = inner

        def step(self, closure: object = None) -> None:
            super().step()
            self.inner.step()

    model = small_mlp()
    outer = Outer(list(model.parameters()), torch.optim.SGD(model.parameters(), lr=0.1))
    with GradientMonitor(model, ratio_every=1) as monitor:
        for step in range(4):
            x, y = batch(seed=step)
            outer.zero_grad()
            task_loss(model(x), y).backward()
            outer.step()
    assert monitor.steps == 4 and (monitor.update_ratios() > 0).all()


# ---- long runs: every N steps, a bounded history -----------------------------------------


def _norms_per_step(model: nn.Module, steps: int, **options: object) -> tuple[GradientMonitor, list[float]]:
    opt, first = torch.optim.SGD(model.parameters(), lr=0.05), []
    with GradientMonitor(model, **options) as mon:
        for step in range(steps):
            x, y = batch(seed=step)
            opt.zero_grad()
            task_loss(model(x), y).backward()
            first.append(float(model.layer1.linear.weight.grad.norm()))
            opt.step()
    return mon, first


def test_every_records_every_nth_step_and_measures_nothing_between() -> None:
    model = small_mlp()
    calls = []
    original = GradientMonitor._activation_stats
    GradientMonitor._activation_stats = lambda self, *args: calls.append(1) or original(self, *args)
    try:
        mon, first = _norms_per_step(model, 10, every=3, hist_every=2, ratio_every=1)
    finally:
        GradientMonitor._activation_stats = original
    assert mon.steps == 4 and mon.step_numbers().tolist() == [0, 3, 6, 9]
    np.testing.assert_allclose(mon.grad_norms()[:, 0], [first[s] for s in (0, 3, 6, 9)], rtol=1e-5)
    assert len(calls) == 4 * 3  # activation statistics of the recorded steps' forward passes only
    assert sorted({h.step for h in mon.histograms()}) == [0, 6]  # every 2nd recorded step
    assert np.isfinite(mon.update_ratios()).all()
    frame = mon.to_dataframe()
    assert sorted(set(frame["step"])) == [0, 3, 6, 9]  # exports name optimizer steps


def test_a_bounded_history_thins_evenly_and_keeps_the_whole_run() -> None:
    mon, first = _norms_per_step(small_mlp(), 40, history=8, hist_every=2)
    numbers = mon.step_numbers()
    assert mon.steps <= 8 and numbers[0] == 0 and numbers[-1] >= 40 - 8 and (np.diff(numbers) == 8).all()
    np.testing.assert_allclose(mon.grad_norms()[:, 0], [first[s] for s in numbers], rtol=1e-5)
    assert {h.step for h in mon.histograms()} <= set(numbers[::2].tolist())  # thinned alike
    records = pickle.loads(pickle.dumps(mon))
    assert records.step_numbers().tolist() == numbers.tolist()
    from vgcourse.plots import gradient_flow_figure
    (left, right) = gradient_flow_figure(records).axes[:2]
    np.testing.assert_array_equal(right.lines[0].get_xdata(), numbers)  # plots take the records too


def test_history_moves_to_the_cpu_in_bulk() -> None:
    from vgcourse.step_table import FLUSH_ROWS

    mon, _ = _norms_per_step(small_mlp(), FLUSH_ROWS + 3, **{"histograms": False})
    assert len(mon._table._recent_steps) == 3  # the rest is numpy on the CPU, moved in one block
    assert mon.grad_norms().shape == (FLUSH_ROWS + 3, 4)
