import math

import numpy as np
import pytest
import torch
from torch import nn

from vgcourse.models import deep_mlp
from vgcourse.probes.layers import fitted_decay_factor
from vgcourse.training import task_loss
from vgcourse.probes.variance import LayerVariances, layer_variances, variance_gain, weight_variance


@pytest.mark.parametrize("init, expected", [("default", 1 / (3 * 64)), ("xavier", 2 / (64 + 32)), ("he", 2 / 64)])
def test_weight_variance_matches_the_weights_deep_mlp_draws(init, expected):
    assert weight_variance(init, 64, 32) == pytest.approx(expected)
    model = deep_mlp(64, 10, depth=3, width=256, init=init)  # layer 2: 256 -> 256
    drawn = float(model.layer2.linear.weight.detach().var())
    assert drawn == pytest.approx(weight_variance(init, 256, 256), rel=0.03)


def test_variance_gains_are_the_textbook_values():
    assert variance_gain("relu", "he", 64, 64) == pytest.approx(1.0)
    assert variance_gain("relu", "default", 64, 64) == pytest.approx(1 / 6)
    assert variance_gain("tanh", "xavier", 64, 64) == pytest.approx(1.0)
    assert variance_gain("tanh", "default", 64, 64, "backward") == pytest.approx(1 / 3)
    assert variance_gain("sigmoid", "xavier", 64, 64, "backward") == pytest.approx(1 / 16)
    # Glorot's compromise: forward uses fan_in, backward fan_out.
    assert variance_gain("tanh", "xavier", 100, 300) == pytest.approx(100 * 2 / 400)
    assert variance_gain("tanh", "xavier", 100, 300, "backward") == pytest.approx(300 * 2 / 400)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: weight_variance("orthogonal", 3, 3), "unknown init 'orthogonal'"),
        (lambda: weight_variance("he", 0, 3), "fan_in must be a positive integer, got 0"),
        (lambda: variance_gain("sigmoid", "he", 3, 3), "no forward variance gain for activation 'sigmoid'"),
        (lambda: variance_gain("gelu", "he", 3, 3, "backward"), "no backward variance gain for activation 'gelu'"),
        (lambda: variance_gain("relu", "he", 3, 3, "sideways"), "unknown direction 'sideways'"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_layer_variances_measure_the_forward_and_backward_signal():
    torch.manual_seed(0)
    model = deep_mlp(8, 3, depth=3, width=16, activation="tanh")
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    v = layer_variances(model, x, y)
    assert isinstance(v, LayerVariances)
    z1 = model.layer1.linear(x)
    h1 = torch.tanh(z1)
    h2 = model.layer2(h1)
    out = model.layer3(h2)
    z1.retain_grad()
    out.retain_grad()
    task_loss(out, y).backward()
    assert v.preactivation_std[0] == pytest.approx(float(z1.detach().std()), rel=1e-5)
    assert v.activation_std[0] == pytest.approx(float(h1.detach().std()), rel=1e-5)
    assert v.signal_std[1] == pytest.approx(float(h2.detach().var(0).mean().sqrt()), rel=1e-5)
    assert math.isnan(v.activation_std[2]) and math.isnan(v.signal_std[2])  # output layer
    assert v.gradient_std[0] == pytest.approx(float(z1.grad.detach().std()), rel=1e-5)
    assert v.gradient_std[2] == pytest.approx(float(out.grad.detach().std()), rel=1e-5)
    assert all(not m._forward_hooks for m in model.modules())


def test_signal_std_ignores_a_constant_offset():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(3.0)  # every example gives the same output 3
    v = layer_variances(model, torch.randn(10, 4), torch.randint(0, 2, (10,)))
    assert v.signal_std[0] == 0.0
    assert v.preactivation_std[0] == 0.0 and v.activation_std[0] == 0.0


def test_layer_variances_leave_grads_alone():
    model = deep_mlp(8, 3, depth=3, width=16, activation="relu")
    layer_variances(model, torch.randn(16, 8), torch.randint(0, 3, (16,)))
    assert all(p.grad is None for p in model.parameters())


def test_he_init_keeps_a_deep_relu_net_signal_constant_and_default_shrinks_it():
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    gains = {}
    for init in ("default", "he"):
        v = layer_variances(deep_mlp(64, 10, depth=16, width=128, activation="relu", init=init), x, y)
        gains[init] = (fitted_decay_factor(v.signal_std[1:-1]) ** 2,
                       fitted_decay_factor(v.gradient_std[1:-1][::-1]) ** 2)
    for init, (forward, backward) in gains.items():
        predicted = variance_gain("relu", init, 128, 128)
        assert forward == pytest.approx(predicted, rel=0.15), init
        assert backward == pytest.approx(predicted, rel=0.15), init


def test_layer_variances_reject_bad_input():
    model = deep_mlp(8, 3, depth=3, width=16)
    with pytest.raises(ValueError, match="at least 2 examples"):
        layer_variances(model, torch.randn(1, 8), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        layer_variances("model", torch.randn(4, 8), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch normalization"):
        layer_variances(deep_mlp(8, 3, depth=3, width=16, batch_norm=True), torch.randn(4, 8),
                        torch.zeros(4, dtype=torch.int64))


def test_lecun_weight_variance_is_one_over_fan_in():
    from vgcourse.probes.variance import weight_variance
    assert weight_variance("lecun", 64, 10) == 1 / 64
