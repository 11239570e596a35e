import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vgcourse.block_seeds import BlockSetup, StackedBlocks, lr_factor, run_block_seeds
from vgcourse.data import Split, digits
from vgcourse.norm_blocks import PLACEMENTS

SMALL = BlockSetup(depth=2, width=8, hidden=12, epochs=2, lr=0.003, batch_size=256)


def small_data(seed: int = 0) -> Split:
    data = digits(seed=seed)
    return Split(data.x_train[:600], data.y_train[:600], data.x_test[:200], data.y_test[:200])


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_the_stack_computes_what_each_model_computes(placement):
    data = small_data()
    models = [SMALL.changed(placement=placement).build(data, seed) for seed in (0, 1, 2)]
    with torch.no_grad():  # non-trivial LayerNorm scales and shifts, so they are stacked right too
        for model in models:
            for module in model.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_()
    x = torch.stack([data.x_train[:7], data.x_train[7:14], data.x_train[14:21]])
    out = StackedBlocks(models)(x)
    for s, model in enumerate(models):
        assert torch.allclose(out[s], model(x[s]), atol=1e-5)


def _alone(setup: BlockSetup, seed: int) -> list[float]:
    """One seed trained by a plain loop written from the documentation: same data, order, schedule."""
    data = small_data(seed)
    model = setup.build(data, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr)
    steps = setup.epochs * math.ceil(len(data.x_train) / setup.batch_size)
    generator = torch.Generator().manual_seed(seed)
    losses, step = [], 0
    for _ in range(setup.epochs):
        order = torch.randperm(len(data.x_train), generator=generator)
        for start in range(0, len(order), setup.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = setup.lr * lr_factor(step, setup.warmup_steps, steps, setup.decay)
            idx = order[start:start + setup.batch_size]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    return losses


@pytest.mark.parametrize("changes", [{}, {"placement": "pre", "warmup_steps": 3}, {"decay": False, "warmup_steps": 2}])
def test_each_seed_trains_as_it_would_alone(changes):
    setup = SMALL.changed(**changes)
    runs = run_block_seeds(setup, seeds=(3, 4), data_for=small_data)
    assert runs.step_loss.shape == (2, 6)
    for row, seed in zip(runs.step_loss, (3, 4)):
        assert row == pytest.approx(_alone(setup, seed), rel=1e-4)
    assert runs.diverged_at == [None, None]
    assert np.all((0 <= runs.test_accuracy()) & (runs.test_accuracy() <= 1))


def test_training_learns_and_warm_up_changes_the_run():
    setup = SMALL.changed(epochs=6, lr=0.01, batch_size=64)
    runs = run_block_seeds(setup, seeds=(0, 1), data_for=small_data)
    assert np.all(runs.step_loss[:, -10:].mean(1) < 0.5 * runs.step_loss[:, 0])
    assert runs.test_accuracy().min() > 0.5
    warm = run_block_seeds(setup.changed(warmup_steps=20), seeds=(0, 1), data_for=small_data)
    assert not np.allclose(warm.step_loss[:, 1:], runs.step_loss[:, 1:])
    assert "median" in runs.describe_accuracy() and "seeds 0, 1" in runs.describe_accuracy()


def test_a_seed_that_diverges_is_flagged_and_the_others_are_untouched():
    def data_for(seed):
        data = small_data(seed)
        if seed == 1:
            data.x_train[0, 0] = math.inf
        return data

    runs = run_block_seeds(SMALL, seeds=(0, 1), data_for=data_for)
    first = runs.diverged_at[1]
    assert first is not None and np.isnan(runs.step_loss[1, first:]).all() and runs.test_accuracy()[1] == 0
    assert runs.diverged_at[0] is None
    assert runs.step_loss[0] == pytest.approx(run_block_seeds(SMALL, seeds=(0,), data_for=data_for).step_loss[0], rel=1e-5)
    assert "1 diverged" in runs.describe_accuracy()


def test_lr_factor_warms_up_linearly_then_decays_to_zero():
    assert [lr_factor(t, 4, 10, True) for t in range(10)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert [lr_factor(t, 0, 4, True) for t in range(4)] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert [lr_factor(t, 2, 5, False) for t in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_factor(0, 10, 5, True)


def test_setup_and_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown setup field"):
        SMALL.changed(learning_rate=0.1)
    with pytest.raises(ValueError, match="placement must be one of"):
        BlockSetup(placement="sandwich")
    with pytest.raises(ValueError, match="warmup_steps must be a non-negative integer"):
        BlockSetup(warmup_steps=-1)
    with pytest.raises(ValueError, match="decay must be True or False"):
        BlockSetup(decay="yes")
    with pytest.raises(ValueError, match="lr must be a positive"):
        BlockSetup(lr=0)
    with pytest.raises(TypeError, match="BlockSetup"):
        run_block_seeds({"placement": "post"})
    with pytest.raises(ValueError, match="distinct"):
        run_block_seeds(SMALL, seeds=(1, 1), data_for=small_data)
    with pytest.raises(ValueError, match="warmup_steps"):
        run_block_seeds(SMALL.changed(warmup_steps=100), seeds=(0,), data_for=small_data)
