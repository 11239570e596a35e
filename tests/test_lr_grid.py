"""vgcourse.seeds.run_lr_grid: one set-up at several learning rates and seeds, in one stacked run."""

import numpy as np
import pytest

from vgcourse.data import spirals
from vgcourse.experiments import Setup
from vgcourse.seeds import LrGrid, check_lrs, run_lr_grid, run_seeds

SMALL = Setup(depth=4, width=16, epochs=2, batch_size=50, activation="tanh", init="xavier", lr=0.1)


def spiral_data(seed):
    return spirals(n=200, seed=seed)


@pytest.mark.parametrize("setup, clip_norm", [(SMALL, None), (SMALL.changed(batch_norm=True, residual=True), 0.5)])
def test_every_member_trains_as_run_seeds_at_its_lr(setup, clip_norm):
    grid = run_lr_grid(setup, lrs=(0.3, 0.01, 0.1), seeds=(0, 2), data_for=spiral_data, clip_norm=clip_norm, progress=False)
    assert isinstance(grid, LrGrid) and grid.lrs == (0.01, 0.1, 0.3) and grid.seeds == (0, 2)
    for lr in grid.lrs:
        alone = run_seeds(setup.changed(lr=lr), seeds=(0, 2), data_for=spiral_data, clip_norm=clip_norm, progress=False)
        runs = grid.by_lr[lr]
        assert runs.setup.lr == lr and [r.setup.lr for r in runs] == [lr, lr] and [r.setup.seed for r in runs] == [0, 2]
        for mine, theirs in zip(runs, alone):
            np.testing.assert_allclose(mine.history.step_loss, theirs.history.step_loss, rtol=1e-4)
            np.testing.assert_allclose(mine.history.test_accuracy, theirs.history.test_accuracy, atol=0.011)
            np.testing.assert_allclose(mine.grad_norms(), theirs.grad_norms(), rtol=1e-3)   # before the lr scaling


def test_the_lrs_differ_in_nothing_else():
    grid = run_lr_grid(SMALL, lrs=(0.01, 1.0), seeds=(1,), data_for=spiral_data, progress=False)
    small, large = grid.by_lr[0.01][0], grid.by_lr[1.0][0]
    assert small.history.step_loss[0] == large.history.step_loss[0]          # same weights, same first batch
    np.testing.assert_allclose(small.grad_norms()[0], large.grad_norms()[0], rtol=1e-6)
    assert small.history.step_loss[-1] != large.history.step_loss[-1]


def test_best_lr_is_the_highest_median_accuracy():
    grid = run_lr_grid(SMALL, lrs=(0.001, 0.3), seeds=(0, 1, 2), data_for=spiral_data, progress=False)
    medians = grid.median_accuracy()
    assert medians.shape == (2,)
    assert medians[1] == np.median(grid.by_lr[0.3].test_accuracy())
    assert grid.best_lr() == grid.lrs[int(np.argmax(medians))] and grid.best() is grid.by_lr[grid.best_lr()]


@pytest.mark.parametrize("lrs, message", [
    ((), "lrs must name at least one lr"),
    ("0.1", "lrs must be a sequence of positive finite numbers"),
    ((0.1, 0.1), "lrs must be distinct"),
    ((0.1, -1.0), "every lr must be a positive finite number"),
    ((0.1, float("inf")), "every lr must be a positive finite number"),
])
def test_bad_lrs_are_rejected(lrs, message):
    with pytest.raises(ValueError, match=message):
        check_lrs(lrs)


def test_adam_grids_are_refused_with_the_alternative():
    with pytest.raises(ValueError, match=r"SGD set-ups only \(got optimizer='adam'\); run_seeds\(setup.changed\(lr=lr\)\)"):
        run_lr_grid(SMALL.changed(optimizer="adam"), lrs=(0.01, 0.1), data_for=spiral_data)
