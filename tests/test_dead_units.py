import numpy as np
import pytest
import torch
from torch import nn

from vgcourse.data import digits
from vgcourse.dead_units import DeadUnitRecorder, dead_fractions, dead_units, ever_dead_units, revived_units
from vgcourse.models import deep_mlp, linear_layers
from vgcourse.training import train


def _pre_activations(model, x):
    """Each hidden layer's pre-activations, by hand: z = h W^T + b, h = relu(z)."""
    zs, h = [], x
    for linear in linear_layers(model)[:-1]:
        z = h @ linear.weight.detach().T + linear.bias.detach()
        zs.append(z)
        h = torch.relu(z)
    return zs


def test_dead_units_are_the_units_negative_on_every_example():
    model = deep_mlp(8, 2, depth=4, width=6, activation="relu", seed=0)
    with torch.no_grad():
        model.layer2.linear.bias[[1, 4]] = -50.0     # two units off for every input
        model.layer3.linear.bias[0] = 50.0           # one unit on for every input
    x = torch.randn(40, 8)
    mask = dead_units(model, x)
    expected = np.stack([(z <= 0).all(dim=0).numpy() for z in _pre_activations(model, x)])
    assert mask.dtype == bool and mask.shape == (3, 6)
    np.testing.assert_array_equal(mask, expected)
    assert mask[1, 1] and mask[1, 4] and not mask[2, 0]
    np.testing.assert_allclose(dead_fractions(model, x), expected.mean(axis=1))


def test_a_unit_positive_on_one_example_is_alive():
    model = deep_mlp(2, 1, depth=2, width=3, activation="relu", seed=0)
    with torch.no_grad():
        model.layer1.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        model.layer1.linear.bias.zero_()
    x = torch.tensor([[-1.0, -1.0], [1e-30, -1.0]])   # unit 1 is positive on the second example only
    assert dead_units(model, x).tolist() == [[False, True, False]]


def test_dead_units_refuse_activations_that_are_never_exactly_zero():
    for activation in ("leaky_relu", "gelu", "sigmoid"):
        with pytest.raises(ValueError, match=r"dead units are defined for activations \['relu', 'relu6'\]"):
            dead_units(deep_mlp(4, 2, depth=3, width=5, activation=activation), torch.randn(3, 4))
    with pytest.raises(ValueError, match="no activation modules"):
        dead_units(deep_mlp(4, 2, depth=1, width=5), torch.randn(3, 4))
    with pytest.raises(TypeError, match="x must be a tensor"):
        dead_units(deep_mlp(4, 2, depth=3, width=5, activation="relu"), [[0.0] * 4])
    uneven = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match=r"same width to stack their units, got widths \[3, 5\]"):
        dead_units(uneven, torch.randn(2, 4))


def test_revived_units_died_at_one_step_and_lived_at_a_later_one():
    # one layer, five units, four steps (True = dead)
    history = np.array([[[True, False, True, False, True]],
                        [[False, True, True, False, True]],
                        [[True, True, True, False, False]],
                        [[True, True, True, False, True]]])
    # unit 0 dead, alive, dead: revived; unit 1 dies and stays dead: no; unit 2 always dead: no;
    # unit 3 never dead: no; unit 4 dead, then alive at step 2: revived
    assert revived_units(history).tolist() == [2]
    assert ever_dead_units(history).tolist() == [4]
    assert revived_units(history[:1]).tolist() == [0]    # one step: nothing can come back yet
    with pytest.raises(ValueError, match="history must be a bool array"):
        revived_units(history.astype(int))
    with pytest.raises(ValueError, match=r"shape \(4, 5\)"):
        revived_units(history[:, 0])
    with pytest.raises(ValueError, match="history must be a bool array"):
        ever_dead_units(history[0])


def test_the_recorder_sees_a_dead_unit_revive_when_the_layer_below_changes():
    model = deep_mlp(3, 1, depth=3, width=2, activation="relu", seed=0)
    with torch.no_grad():
        model.layer1.linear.weight.copy_(torch.eye(2, 3))
        model.layer1.linear.bias.zero_()
        model.layer2.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model.layer2.linear.bias.fill_(-1.0)         # a layer-2 unit is on only where its input exceeds 1
    x = torch.rand(20, 3)                            # in [0, 1): every layer-2 unit is dead
    recorder = DeadUnitRecorder(x)
    recorder(model, 0)
    with torch.no_grad():
        model.layer1.linear.weight.mul_(3.0)         # the layer below changes; layer 2's own weights do not
    recorder(model, 1)
    history = recorder.history()
    assert history.shape == (2, 2, 2) and history[0, 1].all() and not history[1, 1].any()
    assert revived_units(history).tolist() == [0, 2]


def test_the_recorder_records_every_few_steps_and_leaves_training_alone():
    data = digits(seed=0)
    recorded = DeadUnitRecorder(data.x_train, every=10)
    plain = deep_mlp(64, 10, depth=4, width=16, activation="relu", seed=1)
    watched = deep_mlp(64, 10, depth=4, width=16, activation="relu", seed=1)
    train(plain, data, epochs=1, lr=0.5, batch_size=32, progress=False)
    train(watched, data, epochs=1, lr=0.5, batch_size=32, progress=False, after_backward=recorded)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), watched.parameters()))
    assert recorded.steps == [0, 10, 20, 30, 40] and recorded.history().shape == (5, 3, 16)
    untrained = deep_mlp(64, 10, depth=4, width=16, activation="relu", seed=1)
    np.testing.assert_array_equal(recorded.history()[0], dead_units(untrained, data.x_train))  # step 0: before any update


def test_the_recorder_checks_its_arguments():
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        DeadUnitRecorder(torch.zeros(3, 2), every=0)
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        DeadUnitRecorder(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="nothing recorded yet"):
        DeadUnitRecorder(torch.zeros(3, 2)).history()
