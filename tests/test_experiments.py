import inspect
from dataclasses import fields

import pytest
import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

import vgcourse.experiments
from vgcourse.data import spirals
from vgcourse.experiments import BASELINE, Run, Setup, build_model, describe, run
from vgcourse.models import deep_mlp, layer_names
from vgcourse.training import train


def hooks_left(model: torch.nn.Module) -> list[str]:
    """Every non-empty hook table of every module: forward, forward pre, backward, state dict, ..."""
    return [f"{name}.{table}" for name, m in model.named_modules() for table, value in vars(m).items()
            if table.endswith("hooks") and isinstance(value, dict) and value]


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
    assert hooks_left(result.model) == []  # the monitor's forward *pre* hooks too
    again = run(Setup(depth=3, width=16, epochs=2, batch_size=50, activation="tanh"), data)
    assert again.history.step_loss == result.history.step_loss  # seeded


def test_run_leaves_no_hook_of_any_kind() -> None:
    before = len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks)
    watched = []

    def build(setup, data):  # the model run() trains, checked while the monitor is attached
        model = build_model(setup, data)
        watched.append(model)
        return model

    original = vgcourse.experiments.build_model
    vgcourse.experiments.build_model = build
    try:
        result = run(Setup(depth=3, width=8, epochs=1, batch_size=100), spirals(n=200))
    finally:
        vgcourse.experiments.build_model = original
    assert watched == [result.model] and hooks_left(result.model) == []
    assert (len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks)) == before


def test_every_setup_field_reaches_deep_mlp_or_train(monkeypatch) -> None:
    """A new Setup field must be used by run(), not only shown by describe()."""
    received: dict[str, dict] = {}

    def recording(name, function):
        def wrapper(*args, **kwargs):
            received[name] = kwargs
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(vgcourse.experiments, "deep_mlp", recording("deep_mlp", deep_mlp))
    monkeypatch.setattr(vgcourse.experiments, "train", recording("train", train))
    # every field away from its default, so a field that is dropped cannot pass by luck
    setup = Setup(depth=3, width=5, activation="tanh", init="xavier", batch_norm=True, residual=True,
                  weight_scale=0.5, epochs=1, lr=0.01, batch_size=100, optimizer="adam", seed=3)
    assert all(getattr(setup, f.name) != f.default for f in fields(Setup))
    run(setup, spirals(n=200), progress=False)
    for f in fields(Setup):
        reached = [name for name, kwargs in received.items() if f.name in kwargs and kwargs[f.name] == getattr(setup, f.name)]
        assert reached, f"Setup.{f.name} reaches neither deep_mlp nor train in run()"
        for name in reached:
            assert f.name in inspect.signature({"deep_mlp": deep_mlp, "train": train}[name]).parameters


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
