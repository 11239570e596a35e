import pytest
import torch

from vgcourse.data import spirals
from vgcourse.experiments import BASELINE, Run, Setup, build_model, describe, run
from vgcourse.models import layer_names


def test_baseline_is_the_failing_setup_of_notebook_03():
    assert (BASELINE.depth, BASELINE.activation, BASELINE.init, BASELINE.lr, BASELINE.epochs) == (10, "sigmoid", "default", 0.3, 20)


def test_changed_makes_a_copy_and_rejects_unknown_fields():
    relu = BASELINE.changed(activation="relu", init="he")
    assert relu.activation == "relu" and BASELINE.activation == "sigmoid"
    assert describe(relu) == "activation=relu, init=he"
    assert describe(BASELINE) == "baseline"
    with pytest.raises(ValueError, match=r"unknown setup field\(s\) \['activaton'\]"):
        BASELINE.changed(activaton="relu")


def test_build_model_follows_the_setup_and_the_data():
    data = spirals(n=100)
    model = build_model(Setup(depth=4, width=8, batch_norm=True), data)
    assert layer_names(model) == ["layer 1", "layer 2", "layer 3", "layer 4"]
    assert model(torch.randn(3, 2)).shape == (3, 2)
    assert isinstance(model.layer2.norm, torch.nn.BatchNorm1d)
    with pytest.raises(TypeError, match="setup must be a vgcourse.experiments.Setup"):
        build_model({"depth": 3}, data)


def test_run_trains_and_monitors_with_the_setups_budget():
    data = spirals(n=200)
    result = run(Setup(depth=3, width=16, epochs=2, batch_size=50, activation="tanh"), data)
    assert isinstance(result, Run)
    assert result.history.epochs == 2
    assert result.monitor.steps == 2 * 3
    assert result.monitor.layer_names == ["layer 1", "layer 2", "layer 3"]
    assert all(not m._forward_hooks for m in result.model.modules())
    again = run(Setup(depth=3, width=16, epochs=2, batch_size=50, activation="tanh"), data)
    assert again.history.step_loss == result.history.step_loss  # seeded


def test_run_passes_after_backward_to_the_training_loop():
    seen = []
    run(Setup(depth=2, width=4, epochs=1, batch_size=100), spirals(n=200), after_backward=lambda m, s: seen.append(s))
    assert seen == [0, 1]


def test_run_returns_a_diverged_run_flagged_and_can_raise_instead():
    from vgcourse.training import TrainingDiverged

    exploding = Setup(depth=6, width=16, activation="relu", init="he", weight_scale=40.0, lr=1.0, epochs=2, batch_size=50)
    result = run(exploding, spirals(n=200))
    assert result.diverged and result.history.diverged_at == result.monitor.steps
    with pytest.raises(TrainingDiverged):
        run(exploding, spirals(n=200), on_divergence="raise")
    assert not run(Setup(depth=2, width=4, epochs=1, batch_size=100), spirals(n=200)).diverged
