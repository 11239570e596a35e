"""vgcourse.sequence_seeds: S recurrent seeds as one block-diagonal network, each as if trained alone."""

import math

import numpy as np
import pytest
import torch

import vgcourse.sequence_seeds as sequence_seeds
from vgcourse.data import adding_problem, spirals
from vgcourse.models import CELLS, sequence_model
from vgcourse.recurrent_init import forget_bias_, identity_recurrence_, orthogonal_recurrence_
from vgcourse.sequence_seeds import StackedSequenceModel, run_sequence_seeds
from vgcourse.training import train

DATA = adding_problem(6, n_train=48, n_test=24, seed=1)
SEEDS = (0, 2, 5)


@pytest.mark.parametrize("cell", CELLS)
def test_each_block_computes_its_own_model(cell):
    models = [sequence_model(2, 5, 1, cell=cell, seed=s) for s in SEEDS]
    stack = StackedSequenceModel(models)
    x = torch.rand(7, 6, 6)  # seed s reads channels 2s, 2s+1
    out = stack(x)
    assert out.shape == (7, 3, 1)
    for s, model in enumerate(models):
        torch.testing.assert_close(out[:, s], model(x[:, :, 2 * s : 2 * s + 2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_each_seed_reproduces_its_single_run(cell):
    result = run_sequence_seeds(cell, DATA, seeds=SEEDS, hidden_size=5, epochs=3, lr=0.02, batch_size=8)
    assert result.seeds == SEEDS and len(result) == 3 and not result.diverged().any()
    for s, seed in enumerate(SEEDS):
        model = sequence_model(2, 5, 1, cell=cell, seed=seed)
        alone = train(model, DATA, epochs=3, lr=0.02, batch_size=8, optimizer="adam", seed=seed, progress=False)
        np.testing.assert_allclose(result.histories[s].step_loss, alone.step_loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(result.histories[s].test_loss, alone.test_loss, rtol=1e-4)
        for mine, theirs in zip(result.models[s].parameters(), model.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-3, atol=1e-5)
    assert result.test_loss().tolist() == [h.test_loss[-1] for h in result.histories]
    text = result.describe_loss()
    assert text == f"median {np.median(result.test_loss()):.4f}, worst {result.test_loss().max():.4f} (seeds 0, 2, 5)"


def test_a_nan_seed_stops_and_leaves_the_others_untouched(monkeypatch):
    healthy = run_sequence_seeds("lstm", DATA, seeds=(0, 1), hidden_size=4, epochs=2)
    original = sequence_seeds.sequence_model

    def poisoned(*args, seed, **kwargs):
        model = original(*args, seed=seed, **kwargs)
        if seed == 1:
            with torch.no_grad():
                model.core.weight_hh_l0[0, 0] = math.nan
        return model

    monkeypatch.setattr(sequence_seeds, "sequence_model", poisoned)
    mixed = run_sequence_seeds("lstm", DATA, seeds=(0, 1), hidden_size=4, epochs=2)
    assert mixed.diverged().tolist() == [False, True]
    assert mixed.histories[1].diverged_at == 0
    assert mixed.test_loss()[1] == math.inf and mixed.lowest_test_loss()[1] == math.inf
    assert mixed.histories[0].step_loss == healthy.histories[0].step_loss
    assert mixed.histories[0].test_loss == healthy.histories[0].test_loss


def test_weights_that_blow_up_are_flagged_not_raised():
    result = run_sequence_seeds("rnn", DATA, seeds=(0, 1), hidden_size=4, epochs=2, lr=1e38, optimizer="sgd")
    assert result.diverged().all()
    assert all(h.diverged_at is not None and h.diverged_at <= len(h.step_loss) for h in result.histories)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"cell": "transformer"}, ValueError, "unknown cell 'transformer'"),
    ({"data": "adding"}, TypeError, "data must be a vgcourse.data.Split"),
    ({"data": spirals(n=40)}, ValueError, "regression sequence task"),
    ({"hidden_size": 0}, ValueError, "hidden_size must be a positive integer"),
    ({"seeds": (1, 1)}, ValueError, "seeds must be distinct"),
    ({"lr": 0.0}, ValueError, "lr must be a positive finite number"),
    ({"optimizer": "rmsprop"}, ValueError, "unknown optimizer 'rmsprop'"),
])
def test_bad_arguments_are_rejected(kwargs, error, message):
    arguments = {"cell": "lstm", "data": DATA, **kwargs}
    with pytest.raises(error, match=message):
        run_sequence_seeds(**arguments)


@pytest.mark.parametrize("nonlinearity, initialize", [
    ("relu", lambda model, seed: identity_recurrence_(model)),
    ("tanh", lambda model, seed: orthogonal_recurrence_(model, 1.5, seed=seed)),
])
def test_initialized_relu_and_tanh_seeds_reproduce_their_single_runs(nonlinearity, initialize):
    result = run_sequence_seeds("rnn", DATA, seeds=SEEDS, hidden_size=5, epochs=2, lr=0.01, batch_size=8,
                                nonlinearity=nonlinearity, initialize=initialize, progress=False)
    for s, seed in enumerate(SEEDS):
        model = initialize(sequence_model(2, 5, 1, cell="rnn", seed=seed, nonlinearity=nonlinearity), seed)
        assert model.core.nonlinearity == result.models[s].core.nonlinearity == nonlinearity
        alone = train(model, DATA, epochs=2, lr=0.01, batch_size=8, optimizer="adam", seed=seed, progress=False)
        np.testing.assert_allclose(result.histories[s].test_loss, alone.test_loss, rtol=1e-4)


def test_the_forget_bias_reaches_every_seed():
    result = run_sequence_seeds("lstm", DATA, seeds=SEEDS, hidden_size=4, epochs=1, lr=1e-9, batch_size=8,
                                initialize=lambda model, seed: forget_bias_(model, 2.0), progress=False)
    for model in result.models:
        total = model.core.bias_ih_l0 + model.core.bias_hh_l0
        torch.testing.assert_close(total[4:8], torch.full((4,), 2.0), atol=1e-6, rtol=0)


def test_initialize_must_be_callable():
    with pytest.raises(TypeError, match="initialize must be a function"):
        run_sequence_seeds("lstm", DATA, initialize=1.0)
