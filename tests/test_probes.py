import math

import pytest
import torch
from torch import nn

from vgcourse.activations import saturated_fraction
from vgcourse.models import deep_mlp
from vgcourse.probes.layers import activation_outputs, fitted_decay_factor, layer_gradient_norms
from vgcourse.training import task_loss


def test_layer_gradient_norms_match_autograd_and_leave_grads_alone():
    model = deep_mlp(6, 3, depth=4, width=10, activation="tanh")
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    norms = layer_gradient_norms(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    task_loss(model(x), y).backward()
    expected = [model.layer1.linear.weight.grad.norm(), model.layer2.linear.weight.grad.norm(),
                model.layer3.linear.weight.grad.norm(), model.layer4.weight.grad.norm()]
    assert norms == pytest.approx([float(e) for e in expected], rel=1e-5)


def test_deep_sigmoid_gradients_shrink_towards_the_input():
    model = deep_mlp(16, 4, depth=12, width=64, activation="sigmoid")
    x, y = torch.randn(128, 16), torch.randint(0, 4, (128,))
    norms = layer_gradient_norms(model, x, y)
    assert norms[0] < 1e-6 * norms[-1]
    factor = fitted_decay_factor(norms[::-1][:-1])
    # sigmoid' <= 1/4 times the default init's weight gain 1/sqrt(3): about 0.144 per layer.
    assert 0.1 < factor < 0.2


def test_activation_outputs_are_labelled_by_layer_and_hooks_are_removed():
    model = deep_mlp(6, 3, depth=4, width=10, activation="sigmoid")
    x = torch.randn(20, 6)
    outputs = activation_outputs(model, x)
    assert [(label, name) for label, name, _ in outputs] == [
        ("layer 1", "sigmoid"), ("layer 2", "sigmoid"), ("layer 3", "sigmoid")
    ]
    torch.testing.assert_close(outputs[0][2], torch.sigmoid(model.layer1.linear(x)))
    assert all(not m._forward_hooks for m in model.modules())


def test_saturation_grows_with_weight_scale():
    x = torch.randn(256, 16)
    fractions = []
    for scale in (0.5, 4.0, 16.0):
        model = deep_mlp(16, 2, depth=4, width=64, activation="tanh", init="xavier", weight_scale=scale)
        outs = activation_outputs(model, x)
        fractions.append(sum(saturated_fraction(n, o) for _, n, o in outs) / len(outs))
    assert fractions[0] < 0.01 < fractions[1] < fractions[2]
    assert fractions[2] > 0.7


def test_activation_outputs_of_an_arbitrary_model_use_qualified_names():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert [label for label, _, _ in activation_outputs(model, torch.randn(2, 3))] == ["1"]


def test_fitted_decay_factor_recovers_a_geometric_sequence():
    assert fitted_decay_factor([0.25**k for k in range(10)]) == pytest.approx(0.25)
    assert fitted_decay_factor([3.0, 3.0, 3.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("values,message", [([1.0], "at least two"), ([1.0, 0.0], "positive and finite"), ([1.0, math.nan], "positive and finite")])
def test_fitted_decay_factor_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        fitted_decay_factor(values)


def test_probes_validate_their_batch():
    model = deep_mlp(6, 3, depth=2, width=4)
    with pytest.raises(ValueError, match="different numbers of examples: 4 and 3"):
        layer_gradient_norms(model, torch.randn(4, 6), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty batch"):
        activation_outputs(model, torch.randn(0, 6))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        activation_outputs("model", torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"no layers to measure \(no weight matrix\)"):
        layer_gradient_norms(nn.Sequential(nn.ReLU()), torch.randn(2, 3), torch.zeros(2, 3))


def test_layer_gradient_norms_measure_the_layers_the_monitor_watches() -> None:
    # one definition of a layer (vgcourse.models.layers): a convolution is one, as in the monitor
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(2, 1))
    x, y = torch.randn(4, 1, 3), torch.randn(4, 1)
    norms = layer_gradient_norms(model, x, y)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    expected = [model[0].weight.grad.double().norm().item(), model[2].weight.grad.double().norm().item()]
    assert norms == pytest.approx(expected, rel=1e-6)


def test_layer_gradient_norms_are_summed_in_float64() -> None:
    model = deep_mlp(4, 2, depth=2, width=4, seed=0)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with torch.no_grad():
        model.layer2.weight.mul_(1e-30)  # layer 1's gradient is scaled by these weights
    norms = layer_gradient_norms(model, x, y)
    assert 0 < norms[0] < 1e-25
