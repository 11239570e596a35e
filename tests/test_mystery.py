import pytest

from vgcourse.data import digits
from vgcourse.monitor import GradientMonitor, diagnose
from vgcourse.mystery import MYSTERIES, mystery_model, reveal
from vgcourse.training import TrainingDiverged, train


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


@pytest.mark.parametrize("letter", MYSTERIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diagnose_identifies_every_mystery_model(data, letter, seed):
    model = mystery_model(letter, seed=seed)
    with GradientMonitor(model, histograms=False, update_ratios=False) as mon:
        try:
            train(model, data, epochs=1, lr=1e-3, batch_size=32, progress=False)
        except TrainingDiverged:
            assert reveal(letter).problem == "exploding"
    assert diagnose(mon).verdict in reveal(letter).verdicts


def test_each_problem_appears_once_and_models_are_seeded():
    assert sorted(reveal(letter).problem for letter in MYSTERIES) == ["dead", "exploding", "healthy", "vanishing"]
    a, b = mystery_model("C", seed=1), mystery_model("C", seed=1)
    assert (a.layer1.linear.weight == b.layer1.linear.weight).all()
    assert float(mystery_model("D").layer3.linear.bias.detach().max()) == -10.0


def test_unknown_letters_are_named():
    with pytest.raises(ValueError, match=r"unknown mystery model 'E'; choose one of \['A', 'B', 'C', 'D'\]"):
        mystery_model("E")
    with pytest.raises(ValueError, match="unknown mystery model"):
        reveal("a")
