import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from vgcourse.data import Split, adding_problem, spirals
from vgcourse.models import deep_mlp, sequence_model
from vgcourse.training import History, TrainingDiverged, default_device, evaluate, train


@pytest.fixture(scope="module")
def data():
    return spirals(n=400, seed=0)


def test_training_learns_and_records_every_epoch(data):
    model = deep_mlp(2, 2, depth=3, width=32, activation="relu", init="he")
    history = train(model, data, epochs=30, lr=0.01, batch_size=32, optimizer="adam", progress=False)
    assert isinstance(history, History) and history.epochs == 30
    for series in (history.train_loss, history.test_loss, history.train_accuracy, history.test_accuracy):
        assert len(series) == 31  # index 0 is before training
    assert len(history.step_loss) == 30 * math.ceil(300 / 32)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.test_accuracy[-1] > 0.8
    assert history.seconds > 0


def test_same_seed_same_run_different_seed_different_run(data):
    runs = [
        train(deep_mlp(2, 2, depth=3, width=16), data, epochs=2, progress=False, seed=s).step_loss
        for s in (0, 0, 1)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_history_index_zero_matches_evaluate_before_training(data):
    model = deep_mlp(2, 2, depth=2, width=8)
    loss, accuracy = evaluate(model, data.x_test, data.y_test)
    history = train(model, data, epochs=1, progress=False)
    assert history.test_loss[0] == pytest.approx(loss)
    assert history.test_accuracy[0] == pytest.approx(accuracy)


def test_regression_uses_mse_and_records_no_accuracy():
    data = adding_problem(length=6, n_train=64, n_test=32)
    history = train(sequence_model(2, 8, 1, cell="gru"), data, epochs=2, lr=0.01, optimizer="adam", progress=False)
    assert history.train_accuracy == [] and history.test_accuracy == []
    assert len(history.test_loss) == 3


def test_after_backward_sees_gradients_before_the_step(data):
    seen = []

    def look(model, step):
        seen.append((step, model.layer1.linear.weight.grad is not None))

    train(deep_mlp(2, 2, depth=2, width=8), data, epochs=1, batch_size=100, progress=False, after_backward=look)
    assert seen == [(0, True), (1, True), (2, True)]


def test_divergence_raises_a_clear_error_instead_of_running_on_with_nan(data):
    model = deep_mlp(2, 2, depth=6, width=64, activation="relu", init="he", weight_scale=4.0)
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf).*smaller lr"):
        train(model, data, epochs=5, lr=1e6, progress=False)


def test_divergence_can_be_a_result_with_the_history_up_to_the_blow_up(data):
    model = deep_mlp(2, 2, depth=6, width=64, activation="relu", init="he", weight_scale=4.0)
    history = train(model, data, epochs=5, lr=1e6, progress=False, on_divergence="stop")
    assert history.diverged and history.diverged_at is not None
    assert len(history.step_loss) == history.diverged_at  # every recorded loss is finite
    assert all(math.isfinite(v) for v in history.step_loss)
    assert len(history.train_loss) == len(history.test_accuracy) == history.epochs + 1
    assert history.epochs < 5
    healthy = train(deep_mlp(2, 2, depth=2, width=8), data, epochs=1, progress=False, on_divergence="stop")
    assert not healthy.diverged and healthy.diverged_at is None


def test_default_device_is_cpu_without_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"epochs": 0}, ValueError, "epochs must be a positive integer, got 0"),
        ({"lr": -0.1}, ValueError, "lr must be a positive finite number, got -0.1"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"optimizer": "rmsprop"}, ValueError, "unknown optimizer 'rmsprop'; choose one of"),
        ({"on_divergence": "ignore"}, ValueError, "unknown on_divergence 'ignore'; choose one of"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"model": "mlp"}, TypeError, "model must be a torch.nn.Module, got str"),
        ({"model": nn.ReLU()}, ValueError, "model has no parameters"),
        ({"data": (1, 2)}, TypeError, "data must be a vgcourse.data.Split, got tuple"),
    ],
)
def test_bad_arguments_are_named(data, kwargs, error, message):
    args = {"model": deep_mlp(2, 2, depth=2, width=4), "data": data, "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        train(**args)


def test_shape_mismatch_between_model_and_data_is_reported_by_the_model(data):
    wrong = Split(torch.randn(10, 3), torch.zeros(10, dtype=torch.int64), torch.randn(2, 3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 2\), got \(10, 3\)"):
        train(deep_mlp(2, 2, depth=2, width=4), wrong, progress=False)


def test_subnormals_are_flushed_during_training_and_the_default_restored(data):
    def subnormal_survives():
        return float(torch.tensor([1e-39]) * 1.0) != 0.0

    assert subnormal_survives()
    during = []
    train(deep_mlp(2, 2, depth=2, width=4), data, epochs=1, batch_size=300, progress=False,
          after_backward=lambda model, step: during.append(subnormal_survives()))
    assert during == [False]
    assert subnormal_survives()


def _stderr_of_training(env: dict[str, str], progress: bool) -> str:
    code = ("from vgcourse.data import spirals; from vgcourse.models import deep_mlp; from vgcourse.training import train; "
            f"train(deep_mlp(2, 2, depth=2, width=4), spirals(n=40), epochs=2, progress={progress})")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"} | env
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr


def test_the_progress_bar_follows_tqdm_settings():
    # tqdm reads TQDM_* when it is imported, so each case runs in a fresh interpreter, as a kernel does.
    assert "training" in _stderr_of_training({}, progress=True)       # shown by default (a widget in JupyterLab)
    assert "training" not in _stderr_of_training({}, progress=False)
    assert "training" not in _stderr_of_training({"TQDM_DISABLE": "1"}, progress=True)  # nbval, vgcourse build


def test_subnormals_are_flushed_inside_the_block_only():
    from vgcourse.training import subnormals_flushed

    tiny = torch.tensor([1e-39], dtype=torch.float32)       # subnormal in float32
    with subnormals_flushed():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) > 0                             # PyTorch's default is back
    with pytest.raises(RuntimeError):
        with subnormals_flushed():
            raise RuntimeError("a failing training loop")
    assert float(tiny * 1.0) > 0                             # restored even then
