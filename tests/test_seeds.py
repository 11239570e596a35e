import math

import numpy as np
import pytest
import torch

from vgcourse.data import digits, spirals
from vgcourse.experiments import Setup, build_model, run
from vgcourse.models import linear_layers
from vgcourse.seeds import SeedRuns, StackedMLP, check_seeds, run_seeds

SMALL = Setup(depth=4, width=16, epochs=2, batch_size=50, activation="tanh", init="xavier", lr=0.1)


def spiral_data(seed: int):
    return spirals(n=200, seed=seed)


@pytest.mark.parametrize("options", [
    dict(), dict(batch_norm=True), dict(residual=True), dict(batch_norm=True, residual=True, activation="relu"),
])
def test_stacked_copies_compute_what_each_model_computes(options):
    setup = Setup(depth=5, width=16, **options)
    data = digits(seed=0)
    models = [build_model(setup.changed(seed=s), data) for s in (0, 1, 2)]
    stack = StackedMLP(models)
    x = torch.stack([data.x_train[:20], data.x_train[20:40], data.x_train[40:60]])
    for train_mode in (True, False):
        stack.train(train_mode)
        for m in models:
            m.train(train_mode)
        with torch.no_grad():
            got = stack(x)
            expected = torch.stack([m(xs) for m, xs in zip(models, x)])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_each_seed_trains_as_its_own_single_run():
    result = run_seeds(SMALL, seeds=(0, 3), data_for=spiral_data)
    assert result.seeds == (0, 3) and len(result) == 2
    for seed, seed_run in zip((0, 3), result):
        single = run(SMALL.changed(seed=seed), spiral_data(seed), histograms=False, activations=False, update_ratios=False)
        assert seed_run.setup.seed == seed
        np.testing.assert_allclose(seed_run.history.step_loss, single.history.step_loss, rtol=1e-4)
        np.testing.assert_allclose(seed_run.history.test_accuracy, single.history.test_accuracy, atol=1e-9)
        np.testing.assert_allclose(seed_run.grad_norms(), single.monitor.grad_norms(), rtol=1e-3)
        assert seed_run.layer_names == single.monitor.layer_names
        # the returned model holds the trained weights of that seed
        for p, q in zip(seed_run.model.parameters(), single.model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_batch_norm_statistics_are_copied_back():
    setup = SMALL.changed(batch_norm=True)
    result = run_seeds(setup, seeds=(0, 1), data_for=spiral_data)
    single = run(setup.changed(seed=1), spiral_data(1), histograms=False, activations=False, update_ratios=False)
    got, expected = result[1].model.layer2.norm, single.model.layer2.norm
    torch.testing.assert_close(got.running_mean, expected.running_mean, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(got.running_var, expected.running_var, rtol=1e-3, atol=1e-5)
    assert int(got.num_batches_tracked) == int(expected.num_batches_tracked) == 2 * 3


def _weight_norms(model):
    return [float(layer.weight.grad.double().norm()) for layer in linear_layers(model)]


def test_adam_and_clipping_match_torch():
    setup = SMALL.changed(optimizer="adam", lr=0.01)
    result = run_seeds(setup, seeds=(2,), data_for=spiral_data, clip_norm=0.05)
    clipped, before, after = [], [], []

    def clip(model, step):
        before.append(_weight_norms(model))
        clipped.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)))
        after.append(_weight_norms(model))

    single = run(setup.changed(seed=2), spiral_data(2), after_backward=clip,
                 histograms=False, activations=False, update_ratios=False)
    np.testing.assert_allclose(result[0].clip_norms, clipped, rtol=1e-4)
    np.testing.assert_allclose(result[0].history.step_loss, single.history.step_loss, rtol=1e-4)
    # grad_norms() before clipping, as the GradientMonitor records them; clipped_grad_norms() after
    np.testing.assert_allclose(result[0].grad_norms(), before, rtol=1e-3)
    np.testing.assert_allclose(result[0].grad_norms(), single.monitor.grad_norms(), rtol=1e-3)
    np.testing.assert_allclose(result[0].clipped_grad_norms(), after, rtol=1e-3)
    assert np.all(np.array(clipped) > 0.05 * 1.5)  # every step was clipped, so the two differ
    assert np.all(result[0].clipped_grad_norms() < result[0].grad_norms() / 1.5)
    assert result[0].clip_norm == 0.05
    assert np.all(np.sqrt((result[0].clipped_grad_norms() ** 2).sum(axis=1)) <= 0.05 * (1 + 1e-5))


def test_without_clipping_the_clipped_norms_are_the_norms():
    result = run_seeds(SMALL, seeds=(0,), data_for=spiral_data)
    assert result[0].clip_norm is None and result[0].clip_norms.shape == (0,)
    np.testing.assert_array_equal(result[0].clip_factors(), np.ones(len(result[0].grad_norms())))
    np.testing.assert_array_equal(result[0].clipped_grad_norms(), result[0].grad_norms())


def test_a_diverged_seed_is_a_result_and_the_others_train_on():
    # ReLU + He with every weight x 40 and lr 1: the loss overflows within a few steps, every seed
    exploding = Setup(depth=6, width=16, activation="relu", init="he", weight_scale=40.0, lr=1.0,
                      epochs=2, batch_size=50)
    result = run_seeds(exploding, seeds=(0, 1), data_for=spiral_data)
    assert result.diverged().all()
    for seed_run in result:
        at = seed_run.history.diverged_at
        assert at is not None and len(seed_run.history.step_loss) == at
        assert seed_run.grad_norms().shape == (at, 6)
        assert all(math.isfinite(v) for v in seed_run.history.step_loss)
    assert np.all(result.test_accuracy() == 0.0) and np.all(np.isinf(result.test_loss()))
    assert "2 diverged" in result.describe_accuracy()


def test_one_seed_diverging_does_not_touch_another(monkeypatch):
    setup = Setup(depth=3, width=8, activation="relu", init="he", epochs=2, batch_size=50, lr=0.1)
    healthy = run_seeds(setup, seeds=(0, 1), data_for=spiral_data)
    import vgcourse.seeds as seeds_module

    original = seeds_module.build_model

    def poisoned(s, data):  # seed 1's model gets a NaN weight: its loss is NaN from step 0
        model = original(s, data)
        if s.seed == 1:
            with torch.no_grad():
                model.layer1.linear.weight[0, 0] = math.nan
        return model

    monkeypatch.setattr(seeds_module, "build_model", poisoned)
    mixed = run_seeds(setup, seeds=(0, 1), data_for=spiral_data)
    assert list(mixed.diverged()) == [False, True] and mixed[1].history.diverged_at == 0
    assert mixed[0].history.step_loss == healthy[0].history.step_loss
    assert mixed[0].history.test_accuracy == healthy[0].history.test_accuracy


def test_summaries():
    result = run_seeds(SMALL, seeds=(0, 1, 2), data_for=spiral_data)
    assert isinstance(result, SeedRuns)
    acc = result.test_accuracy()
    assert acc.shape == (3,) and np.all((0 <= acc) & (acc <= 1))
    text = result.describe_accuracy()
    assert text == f"median {np.median(acc):.1%}, worst {acc.min():.1%} (seeds 0, 1, 2)"
    norms = result[0].grad_norms()
    assert result[0].first_last_ratio() == pytest.approx(float(np.median(norms[:, 0] / norms[:, -1])))
    assert result[0].first_last_ratio(last=2) == pytest.approx(float(np.median(norms[-2:, 0] / norms[-2:, -1])))
    assert result.first_last_ratios().shape == (3,)
    assert norms.dtype == np.float64


@pytest.mark.parametrize("seeds, message", [
    ((), "at least one seed"), ((0, 0), "distinct"), ((0, -1), "non-negative"), (3, "sequence"),
    ("01", "sequence"), ((0, True), "non-negative integer"),
])
def test_bad_seeds_are_rejected(seeds, message):
    with pytest.raises(ValueError, match=message):
        check_seeds(seeds)


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="setup must be"):
        run_seeds({"depth": 3})
    with pytest.raises(ValueError, match="clip_norm"):
        run_seeds(SMALL, clip_norm=0.0, data_for=spiral_data)
    with pytest.raises(ValueError, match="lr must be"):
        run_seeds(SMALL.changed(lr=-1.0), data_for=spiral_data)
    with pytest.raises(TypeError, match="data_for"):
        run_seeds(SMALL, data_for=spirals(n=10))
