"""Tests for vgcourse.step_effects: each layer's first-order loss change per step, and gradient cosines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vgcourse.data import digits
from vgcourse.experiments import BASELINE, run
from vgcourse.models import deep_mlp, linear_layers
from vgcourse.monitor import NORMS_ONLY, GradientMonitor
from vgcourse.step_effects import StepEffects
from vgcourse.training import task_loss, train


def small_mlp(**kwargs: object) -> nn.Module:
    return deep_mlp(6, 3, depth=4, width=16, activation="tanh", **kwargs)


def batch(seed: int, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def sgd_loop(model: nn.Module, effects: StepEffects, steps: int, lr: float, same_batch: bool = False) -> list:
    """Plain SGD, calling ``effects`` where ``train`` calls ``after_backward``; the gradients of each step."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    grads = []
    for step in range(steps):
        x, y = batch(0 if same_batch else step)
        opt.zero_grad()
        task_loss(model(x), y).backward()
        grads.append([None if lin.weight.grad is None else lin.weight.grad.double().clone()
                      for lin in linear_layers(model)])
        effects(model, step)
        opt.step()
    return grads


def test_under_sgd_a_layers_loss_change_is_minus_lr_times_its_squared_gradient() -> None:
    model, effects, lr = small_mlp(seed=0), StepEffects(), 0.1
    grads = sgd_loop(model, effects, steps=5, lr=lr)
    expected = np.array([[-lr * float(g.pow(2).sum()) for g in step] for step in grads[:-1]])
    assert effects.steps == 4 and effects.loss_changes().shape == (4, 4)
    np.testing.assert_allclose(effects.loss_changes(), expected, rtol=1e-5)
    assert np.all(effects.loss_changes() < 0)


def test_the_cosines_are_those_of_successive_gradients() -> None:
    model, effects = small_mlp(seed=1), StepEffects()
    grads = sgd_loop(model, effects, steps=4, lr=0.05)
    expected = [[float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
                 for a, b in zip(grads[t], grads[t + 1])] for t in range(3)]
    np.testing.assert_allclose(effects.gradient_cosines(), expected, rtol=1e-6)
    same = StepEffects()
    sgd_loop(small_mlp(seed=1), same, steps=3, lr=1e-6, same_batch=True)  # the same batch, a tiny step
    assert np.all(same.gradient_cosines() > 0.999999)


def test_summed_over_layers_it_predicts_the_loss_change_of_a_small_step() -> None:
    model = small_mlp(seed=2)
    for lin in linear_layers(model):
        lin.bias.requires_grad_(False)  # only the layers' weights move, so they carry the whole change
    effects, opt = StepEffects(), torch.optim.Adam([lin.weight for lin in linear_layers(model)], lr=1e-4)
    x, y = batch(3)
    with torch.no_grad():
        before = float(task_loss(model(x), y))
    task_loss(model(x), y).backward()
    effects(model, 0)
    opt.step()
    with torch.no_grad():
        after = float(task_loss(model(x), y))
    opt.zero_grad()
    task_loss(model(x), y).backward()
    effects(model, 1)
    predicted = float(effects.loss_changes().sum())
    assert predicted < 0 and abs((after - before) - predicted) < 0.01 * abs(predicted)


def test_it_names_the_layers_as_the_monitor_does_and_changes_nothing() -> None:
    data = digits(seed=0)
    setup = BASELINE.changed(depth=3, epochs=1)
    effects = StepEffects()
    watched = run(setup, data, options=NORMS_ONLY, progress=False, after_backward=effects)
    plain = run(setup, data, options=NORMS_ONLY, progress=False)
    assert effects.layer_names == watched.monitor.layer_names == ["layer 1", "layer 2", "layer 3"]
    assert effects.model is watched.model and effects.steps == watched.monitor.steps - 1 == 42
    for a, b in zip(watched.model.parameters(), plain.model.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(watched.monitor.grad_norms(), plain.monitor.grad_norms())


def test_it_runs_inside_train_with_a_monitor_attached() -> None:
    data = digits(seed=0)
    model = deep_mlp(data.n_features, data.n_classes, depth=3, width=16, seed=0)
    effects = StepEffects(model)
    with GradientMonitor(model, NORMS_ONLY) as monitor:
        train(model, data, epochs=1, lr=0.1, batch_size=256, progress=False, after_backward=effects)
    assert monitor.steps == 6 and effects.steps == 5
    assert np.isfinite(effects.loss_changes()).all() and np.isfinite(effects.gradient_cosines()).all()


def test_a_layer_without_a_gradient_reads_nan() -> None:
    model = small_mlp(seed=0)
    first = linear_layers(model)[0]
    first.weight.requires_grad_(False)
    first.bias.requires_grad_(False)
    effects = StepEffects(model)
    sgd_loop(model, effects, steps=3, lr=0.1)
    assert np.isnan(effects.loss_changes()[:, 0]).all() and np.isnan(effects.gradient_cosines()[:, 0]).all()
    assert np.isfinite(effects.loss_changes()[:, 1:]).all()


def test_before_two_calls_there_is_no_row() -> None:
    effects = StepEffects()
    assert effects.steps == 0 and effects.loss_changes().shape == (0, 0)
    model = small_mlp(seed=0)
    sgd_loop(model, effects, steps=1, lr=0.1)
    assert effects.loss_changes().shape == (0, 4) and effects.gradient_cosines().shape == (0, 4)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        StepEffects("a model")
    with pytest.raises(ValueError, match="no layer"):
        StepEffects(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        StepEffects()(None, 0)
    model, effects = small_mlp(seed=0), StepEffects()
    sgd_loop(model, effects, steps=2, lr=0.1)
    with pytest.raises(ValueError, match="another model"):
        effects(small_mlp(seed=0), 2)
    with pytest.raises(ValueError, match="follow one another: got step 5 after step 1"):
        effects(model, 5)
    for step in (-1, 2.0, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            StepEffects(model)(model, step)
    assert effects.steps == 1 and not math.isnan(effects.loss_changes()[0, 0])


def test_a_sparse_gradient_is_read_as_a_dense_one() -> None:
    model = nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Flatten(), nn.Linear(8, 3))
    effects, opt = StepEffects(model), torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        task_loss(model(torch.tensor([[1, 2], [3, 1]])), torch.tensor([0, 2])).backward()
        effects(model, step)
        opt.step()
    assert effects.layer_names == ["0 (Embedding)", "2 (Linear)"] and np.all(effects.loss_changes() < 0)
