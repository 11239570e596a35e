import subprocess
import sys

import pytest
import torch

from vgcourse.data import ADDING_BASELINE_MSE, Split, adding_problem, digits, spirals


def test_digits_is_the_real_data_set_split_and_standardized():
    split = digits()
    assert split.n_features == 64 and split.n_classes == 10
    assert len(split.x_train) + len(split.x_test) == 1797
    assert len(split.x_test) == round(1797 * 0.25)
    assert split.y_train.dtype == torch.int64
    informative = split.x_train.std(0) > 0.5  # constant border pixels stay ~0
    torch.testing.assert_close(split.x_train.mean(0), torch.zeros(64), atol=1e-4, rtol=0)
    torch.testing.assert_close(split.x_train.std(0)[informative], torch.ones(int(informative.sum())), atol=1e-3, rtol=0)


def test_the_shipped_digits_are_scikit_learns():
    # The package carries its own copy of the file (importing scikit-learn costs each kernel ~1.4 s);
    # it must be the very data set scikit-learn loads, in the same order.
    from sklearn.datasets import load_digits

    bunch, split = load_digits(), digits(test_fraction=0.25, seed=0)
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    train = order[round(1797 * 0.25):]
    raw = torch.tensor(bunch.data, dtype=torch.float32)[train]
    std = raw.std(0).clamp_min(1e-3)
    torch.testing.assert_close(split.x_train, (raw - raw.mean(0)) / std)
    assert torch.equal(split.y_train, torch.tensor(bunch.target)[train])


def test_loading_the_digits_does_not_import_scikit_learn():
    code = "import sys; from vgcourse.data import digits; digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_digits_is_reproducible_and_seed_dependent():
    a, b, c = digits(seed=1), digits(seed=1), digits(seed=2)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_train, c.y_train)


def test_spirals_shapes_balance_and_reproducibility():
    split = spirals(n=400, seed=3)
    assert split.n_features == 2 and split.n_classes == 2
    assert len(split.x_train) == 300
    y = torch.cat([split.y_train, split.y_test])
    assert int((y == 1).sum()) == 200
    assert torch.equal(spirals(n=400, seed=3).x_train, split.x_train)


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    split = adding_problem(length=40, n_train=300, n_test=100, seed=0)
    assert split.x_train.shape == (300, 40, 2) and split.y_train.shape == (300, 1)
    assert split.n_classes is None
    markers = split.x_train[..., 1]
    assert torch.all(markers.sum(1) == 2)
    first, second = markers[:, :20].argmax(1), markers[:, 20:].argmax(1) + 20
    assert torch.all(markers[:, :20].sum(1) == 1)
    rows = torch.arange(300)
    expected = split.x_train[rows, first, 0] + split.x_train[rows, second, 0]
    torch.testing.assert_close(split.y_train[:, 0], expected)


def test_adding_problem_baseline_is_one_sixth():
    split = adding_problem(length=10, n_train=10, n_test=20000, seed=1)
    mse = float(((split.y_test - 1.0) ** 2).mean())
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert mse == pytest.approx(1 / 6, abs=0.01)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: digits(test_fraction=1.0), r"test_fraction must be a number in \(0, 1\), got 1.0"),
        (lambda: digits(seed=-2), "seed must be a non-negative integer, got -2"),
        (lambda: spirals(n=2), "n must be an integer >= 4, got 2"),
        (lambda: spirals(noise=-1), "noise must be a non-negative finite number, got -1"),
        (lambda: adding_problem(length=1), "length must be an integer >= 2, got 1"),
        (lambda: adding_problem(length=10, n_train=0), "n_train must be a positive integer, got 0"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_split_is_plain_data():
    split = Split(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(1, 2), torch.zeros(1, 1))
    assert split.n_features == 2 and split.n_classes is None
