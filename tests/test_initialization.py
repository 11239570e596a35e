import pytest
import torch
from torch import nn

from vgcourse.initialization import centre_sigmoid_biases_, constant_, lsuv_, normal_, orthogonal_
from vgcourse.models import deep_mlp, linear_layers


def test_orthogonal_gives_every_layer_its_gain_as_every_singular_value_and_zero_biases():
    model = deep_mlp(12, 5, depth=4, width=20, activation="tanh", seed=0)
    assert orthogonal_(model, gain=1.5, first_gain=0.1, seed=3) is model
    linears = linear_layers(model)
    for i, linear in enumerate(linears):
        values = torch.linalg.svdvals(linear.weight.detach().double())
        assert torch.allclose(values, torch.full_like(values, 0.1 if i == 0 else 1.5), rtol=1e-6)
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    w = linears[1].weight.detach().double()
    assert torch.allclose(w @ w.T, 1.5 ** 2 * torch.eye(20, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(torch.linalg.svdvals(linear_layers(orthogonal_(model, gain=2.0))[0].weight.detach()),
                          torch.full((12,), 2.0), rtol=1e-5)  # first_gain=None: the first layer gets gain too


def test_orthogonal_and_normal_depend_only_on_their_seed():
    state = torch.random.get_rng_state()
    for init in (orthogonal_, normal_):
        a = init(deep_mlp(6, 3, depth=3, width=8, seed=0), seed=5)
        b = init(deep_mlp(6, 3, depth=3, width=8, seed=1), seed=5)
        c = init(deep_mlp(6, 3, depth=3, width=8, seed=0), seed=6)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        assert not torch.equal(a.layer2.linear.weight, c.layer2.linear.weight)
        assert not torch.equal(a.layer1.linear.weight, a.layer2.linear.weight[:, :6])  # each layer its own draw
    assert torch.equal(torch.random.get_rng_state(), state)


def test_normal_draws_zero_mean_weights_of_the_given_std():
    model = normal_(deep_mlp(400, 10, depth=2, width=500, seed=0), std=0.7, seed=1)
    w = model.layer1.linear.weight.detach().double()
    assert abs(float(w.mean())) < 6 * 0.7 / 400  # 6 standard errors of the mean of 200,000 draws
    assert float(w.std()) == pytest.approx(0.7, rel=0.01)
    assert all(float(linear.bias.detach().abs().max()) == 0.0 for linear in linear_layers(model))


def test_constant_makes_every_weight_the_value_and_every_bias_zero():
    model = constant_(deep_mlp(4, 3, depth=3, width=5, seed=0), 0.25)
    for linear in linear_layers(model):
        assert torch.equal(linear.weight, torch.full_like(linear.weight, 0.25))
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))


@torch.no_grad()
def preactivation_variances(model, x):
    """Each nn.Linear's output variance on x, from an explicit forward pass through the layers."""
    variances, h = [], x
    for layer in model:
        linear = layer if isinstance(layer, nn.Linear) else layer.linear
        z = linear(h)
        variances.append(float(z.double().var()))
        h = z if layer is linear else layer.act(z)
    return variances


@pytest.mark.parametrize("activation, start", [("relu", "default"), ("tanh", "orthogonal"), ("sigmoid", "xavier")])
def test_lsuv_gives_every_layer_unit_output_variance_by_rescaling_its_weights(activation, start):
    init = "default" if start == "orthogonal" else start
    model = deep_mlp(10, 4, depth=8, width=24, activation=activation, init=init, seed=2)
    if start == "orthogonal":
        orthogonal_(model, seed=2)
    x = torch.randn(200, 10, generator=torch.Generator().manual_seed(0)) * 3
    before = [linear.weight.detach().clone() for linear in linear_layers(model)]
    assert lsuv_(model, x, tolerance=0.02) is model
    assert all(abs(v - 1) < 0.02 for v in preactivation_variances(model, x))
    for old, linear in zip(before, linear_layers(model)):
        ratio = linear.weight.detach() / old
        assert float(ratio.min()) > 0 and torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)
    if start == "default":  # nonzero biases: one rescaling is not exact, but the tolerance is met
        assert preactivation_variances(model, x) != pytest.approx([1.0] * 8, abs=1e-6)


class Wrapped(nn.Module):
    """The same layers, not an nn.Sequential: lsuv_ runs the whole forward pass for every measurement."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, x):
        return self.inner(x)


def test_lsuv_walks_a_sequential_once_and_rescales_it_as_the_full_forward_pass_would():
    x = torch.randn(128, 10, generator=torch.Generator().manual_seed(1))
    walked = lsuv_(deep_mlp(10, 4, depth=6, width=16, activation="tanh", residual=True, seed=3), x, tolerance=0.01)
    wrapped = lsuv_(Wrapped(deep_mlp(10, 4, depth=6, width=16, activation="tanh", residual=True, seed=3)), x,
                    tolerance=0.01).inner
    assert all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(walked.parameters(), wrapped.parameters()))
    assert all(abs(v - 1) < 0.01 for v in preactivation_variances(wrapped, x)[:1])
    assert not torch.equal(walked.layer3.linear.weight, deep_mlp(10, 4, depth=6, width=16, activation="tanh",
                                                                residual=True, seed=3).layer3.linear.weight)


def test_lsuv_refuses_a_layer_whose_output_does_not_vary_and_bad_arguments():
    x = torch.randn(16, 4)
    with pytest.raises(ValueError, match="linear layer 1 has variance 0"):
        lsuv_(constant_(deep_mlp(4, 2, depth=3, width=5), 0.0), x)
    model = deep_mlp(4, 2, depth=3, width=5)
    for call, message in [
        (lambda: lsuv_(model, x[:1]), "at least 2 inputs"),
        (lambda: lsuv_(model, x[:, :3]), r"shape \(batch, 4\)"),
        (lambda: lsuv_(model, x, tolerance=1.5), r"tolerance must be a number in \(0, 1\)"),
        (lambda: lsuv_(model, x, max_iterations=0), "max_iterations must be a positive integer"),
        (lambda: lsuv_(model, x.numpy()), "x must be a tensor"),
        (lambda: orthogonal_(model, gain=0.0), "gain must be a positive finite number"),
        (lambda: orthogonal_(model, first_gain=-1.0), "first_gain must be a positive"),
        (lambda: orthogonal_(model, seed=-1), "seed must be a non-negative integer"),
        (lambda: normal_(model, std=float("nan")), "std must be a positive finite number"),
        (lambda: constant_(model, "0.1"), "value must be a finite number"),
        (lambda: constant_(nn.Tanh()), "no nn.Linear layers"),
        (lambda: orthogonal_("model"), "torch.nn.Module"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            call()


def test_centred_biases_make_a_sigmoid_network_a_tanh_network_on_half_the_pre_activations():
    model = centre_sigmoid_biases_(orthogonal_(deep_mlp(16, 3, depth=5, width=16, activation="sigmoid", seed=1), gain=4.0, seed=1))
    torch.testing.assert_close(model.layer3.linear.bias, -model.layer3.linear.weight.sum(1) / 2)  # in float32, before .double()
    x = torch.randn(9, 16, dtype=torch.float64)
    weights = [linear.weight.detach().double() for linear in linear_layers(model)]
    u = x @ weights[0].T / 2                    # layer 1's bias is 0 and left alone: u = z / 2
    for w in weights[1:-1]:
        u = torch.tanh(u) @ (w / 4).T            # a tanh layer with orthogonal weights of gain 1
    expected = torch.tanh(u) @ weights[-1].T / 2    # sigma(z) - 1/2 = tanh(z/2) / 2 feeds the output layer
    # the biases were computed in float32: agreement to float32 rounding (uncentred, they differ by about 1)
    torch.testing.assert_close(model.double()(x), expected, atol=1e-5, rtol=0)
    assert float(model.layer1.linear.bias.abs().max()) == 0.0


def test_centred_biases_leave_the_first_layer_and_refuse_other_networks():
    model = deep_mlp(8, 2, depth=3, width=8, seed=2)            # default init: layer 1 has a random bias
    first = model.layer1.linear.bias.detach().clone()
    centre_sigmoid_biases_(model)
    assert torch.equal(model.layer1.linear.bias, first)
    with pytest.raises(ValueError, match="layer 1 has activation ReLU; centred biases are for sigmoid layers"):
        centre_sigmoid_biases_(deep_mlp(8, 2, depth=3, width=8, activation="relu"))
    with pytest.raises(ValueError, match="layer 1 is residual or batch-normalized"):
        centre_sigmoid_biases_(deep_mlp(8, 2, depth=3, width=8, batch_norm=True))
    with pytest.raises(ValueError, match="layer 2 is residual or batch-normalized"):
        centre_sigmoid_biases_(deep_mlp(8, 2, depth=3, width=8, residual=True))
    with pytest.raises(ValueError, match="must be a vgcourse.models.DeepMLP, got Sequential"):
        centre_sigmoid_biases_(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()))
