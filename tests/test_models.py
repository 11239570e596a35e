import pytest
import torch
from torch import nn

from vgcourse.models import INITS, DeepMLP, Dense, deep_mlp, layer_names, layers, linear_layers, sequence_model


def test_deep_mlp_has_depth_weight_layers_named_in_order():
    model = deep_mlp(64, 10, depth=5, width=32)
    assert isinstance(model, DeepMLP)
    assert [name for name, _ in model.named_children()] == [f"layer{i}" for i in range(1, 6)]
    assert layer_names(model) == [f"layer {i}" for i in range(1, 6)]
    shapes = [tuple(layer.weight.shape) for layer in linear_layers(model)]
    assert shapes == [(32, 64), (32, 32), (32, 32), (32, 32), (10, 32)]
    assert model(torch.randn(7, 64)).shape == (7, 10)


def test_depth_one_is_a_linear_model():
    model = deep_mlp(3, 2, depth=1, width=99)
    assert len(linear_layers(model)) == 1
    assert tuple(model.layer1.weight.shape) == (2, 3)


@pytest.mark.parametrize("activation,cls", [("sigmoid", nn.Sigmoid), ("relu", nn.ReLU), ("gelu", nn.GELU)])
def test_activation_is_used_in_every_hidden_layer(activation, cls):
    model = deep_mlp(4, 2, depth=4, width=8, activation=activation)
    assert all(isinstance(model[i].act, cls) for i in range(3))


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = deep_mlp(8, 2, depth=3, width=16, seed=5)
    assert torch.rand(1) == expected_next  # building the model did not consume global randomness
    b = deep_mlp(8, 2, depth=3, width=16, seed=5)
    c = deep_mlp(8, 2, depth=3, width=16, seed=6)
    assert torch.equal(a.layer2.linear.weight, b.layer2.linear.weight)
    assert not torch.equal(a.layer2.linear.weight, c.layer2.linear.weight)


@pytest.mark.parametrize(
    "init,expected_std",
    [
        ("default", (1 / (3 * 256)) ** 0.5),  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        ("xavier", (2 / (256 + 256)) ** 0.5),
        ("he", (2 / 256) ** 0.5),
        ("lecun", (1 / 256) ** 0.5),  # LeCun et al. (1998): Var(w) = 1 / fan_in
    ],
)
def test_initializations_have_the_textbook_weight_std(init, expected_std):
    model = deep_mlp(256, 10, depth=4, width=256, init=init)
    weight = model.layer2.linear.weight.detach()
    assert float(weight.std()) == pytest.approx(expected_std, rel=0.03)
    if init != "default":
        assert float(model.layer2.linear.bias.detach().abs().max()) == 0.0


def test_weight_scale_multiplies_the_initial_weights():
    base = deep_mlp(8, 2, depth=3, width=16, init="xavier")
    scaled = deep_mlp(8, 2, depth=3, width=16, init="xavier", weight_scale=3.0)
    torch.testing.assert_close(scaled.layer2.linear.weight, 3 * base.layer2.linear.weight)


def test_orthogonal_is_not_a_deep_mlp_init_but_a_function_of_vgcourse_initialization():
    assert INITS == ("default", "xavier", "he", "lecun")
    with pytest.raises(ValueError, match=r"choose one of \['default', 'xavier', 'he', 'lecun'\]"):
        deep_mlp(4, 2, depth=3, width=8, init="orthogonal")


def test_batch_norm_sits_between_linear_and_activation():
    model = deep_mlp(8, 2, depth=3, width=16, batch_norm=True)
    assert isinstance(model.layer1.norm, nn.BatchNorm1d)
    assert isinstance(deep_mlp(8, 2, depth=3, width=16).layer1.norm, nn.Identity)


def test_residual_layers_add_their_input():
    model = deep_mlp(8, 2, depth=4, width=16, residual=True)
    assert not model.layer1.residual  # it changes the width
    assert model.layer2.residual and model.layer3.residual
    layer = model.layer2
    h = torch.randn(5, 16)
    torch.testing.assert_close(layer(h), h + layer.act(layer.linear(h)))
    with pytest.raises(ValueError, match="in_features == out_features"):
        Dense(3, 4, "relu", residual=True)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 0}, "depth must be a positive integer, got 0"),
        ({"depth": 2.0}, "depth must be a positive integer"),
        ({"width": -3}, "width must be a positive integer, got -3"),
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"init": "glorot"}, "unknown init 'glorot'; choose one of"),
        ({"batch_norm": "yes"}, "batch_norm must be True or False"),
        ({"weight_scale": 0}, "weight_scale must be a positive finite number"),
        ({"weight_scale": float("nan")}, "weight_scale must be a positive finite number"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"in_features": 4, "out_features": 2, "depth": 3, "width": 8, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        deep_mlp(**args)


def test_wrong_input_shape_gets_a_clear_error():
    model = deep_mlp(64, 10, depth=3, width=8)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 64\), got \(5, 8, 8\)"):
        model(torch.randn(5, 8, 8))


@pytest.mark.parametrize("cell,core", [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_sequence_model_reads_out_the_last_step(cell, core):
    model = sequence_model(2, 16, 1, cell=cell)
    assert isinstance(model.core, core)
    x = torch.randn(4, 30, 2)
    out = model(x)
    assert out.shape == (4, 1)
    states, _ = model.core(x)
    torch.testing.assert_close(out, model.readout(states[:, -1]))
    # Changing only the last input step changes the output; the readout sees the final state.
    x2 = x.clone()
    x2[:, -1] += 1
    assert not torch.allclose(model(x2), out)


def test_sequence_model_validates():
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        sequence_model(2, 8, 1, cell="transformer")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        sequence_model(2, 0, 1)
    with pytest.raises(ValueError, match=r"\(batch, time, 2\)"):
        sequence_model(2, 8, 1)(torch.randn(4, 2))
    a, b = sequence_model(2, 8, 1, seed=3), sequence_model(2, 8, 1, seed=3)
    assert torch.equal(a.core.weight_hh_l0, b.core.weight_hh_l0)


def test_layer_names_of_an_arbitrary_model_are_qualified_names():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
    assert layer_names(model) == ["0 (Linear)", "2.0 (Linear)"]


def test_layers_is_the_one_list_of_a_models_layers():
    model = deep_mlp(6, 3, depth=3, width=4, activation="relu", batch_norm=True)
    found = layers(model)
    assert [layer.name for layer in found] == ["layer 1", "layer 2", "layer 3"]  # BatchNorm's 1-D weight is no layer
    assert [layer.module for layer in found] == [model.layer1.linear, model.layer2.linear, model.layer3]
    assert all(layer.weight is layer.module.weight for layer in found)
    assert [layer.activation for layer in found] == [model.layer1.act, model.layer2.act, None]
    assert layer_names(model) == ["layer 1", "layer 2", "layer 3"] and linear_layers(model) == [l.module for l in found]


def test_layers_of_a_recurrent_model_and_of_shared_weights():
    model = sequence_model(2, 8, 1, cell="gru", num_layers=2)
    assert layer_names(model) == ["core.weight_ih_l0", "core.weight_hh_l0", "core.weight_ih_l1", "core.weight_hh_l1",
                                  "readout"]  # every matrix, input-to-hidden ones too
    shared = nn.Linear(3, 3)
    tied = nn.Sequential(shared, nn.Tanh(), shared, nn.Conv1d(1, 1, 2))
    assert layer_names(tied) == ["0 (Linear)", "3 (Conv1d)"]  # a weight used twice counts once; a convolution is a layer


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's imports (torch.jit)
def test_layer_names_of_a_sequential_say_what_the_index_is_and_wrappers_add_nothing():
    """Issue 15, defect 12: "the gradient norm of 0 is 0 × that of 78", and ``_orig_mod.`` under compile."""
    import torch
    from torch import nn

    from vgcourse.models import layer_names

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Tanh()), nn.Linear(8, 2))
    names = ["0 (Linear)", "2.0 (Linear)", "3 (Linear)"]
    assert layer_names(model) == names
    assert layer_names(torch.compile(model)) == names  # the wrapper is not compiled until called
    assert layer_names(nn.DataParallel(model)) == names


def test_sequence_model_nonlinearity():
    assert sequence_model(2, 4, 1, cell="rnn", nonlinearity="relu").core.nonlinearity == "relu"
    assert sequence_model(2, 4, 1, cell="rnn").core.nonlinearity == "tanh"
    with pytest.raises(ValueError, match=r"nonlinearity 'relu' is not available for cell 'lstm'; choose one of \['tanh'\]"):
        sequence_model(2, 4, 1, cell="lstm", nonlinearity="relu")
    with pytest.raises(ValueError, match=r"choose one of \['tanh', 'relu'\]"):
        sequence_model(2, 4, 1, cell="rnn", nonlinearity="sigmoid")


def test_lecun_init_is_normal_with_variance_one_over_fan_in_and_zero_biases():
    model = deep_mlp(1024, 10, depth=3, width=256, init="lecun", seed=1)
    for linear, fan_in in zip(linear_layers(model), (1024, 256, 256)):
        assert float(linear.weight.detach().std()) == pytest.approx(fan_in ** -0.5, rel=0.05)
        assert float(linear.bias.detach().abs().max()) == 0.0
    first = model.layer1.linear.weight.detach().flatten()
    kurtosis = float(((first - first.mean()) ** 4).mean() / first.var() ** 2)
    assert kurtosis == pytest.approx(3.0, abs=0.1)  # normal (a uniform init would give 1.8)


def test_xavier_and_lecun_agree_on_square_layers_only():
    xavier, lecun = (deep_mlp(32, 10, depth=4, width=32, init=init, seed=3) for init in ("xavier", "lecun"))
    for a, b in zip(linear_layers(xavier)[:-1], linear_layers(lecun)[:-1]):  # 32 -> 32: 2/(32+32) = 1/32
        assert torch.equal(a.weight, b.weight)
    assert not torch.equal(xavier.layer4.weight, lecun.layer4.weight)  # 32 -> 10


def test_selu_with_lecun_init_keeps_the_activations_standardized():
    from vgcourse.probes.layers import activation_outputs

    x = torch.randn(512, 128, generator=torch.Generator().manual_seed(0))
    model = deep_mlp(128, 10, depth=30, width=128, activation="selu", init="lecun", seed=0)
    outputs = [h for _, _, h in activation_outputs(model, x)]
    assert isinstance(model.layer1.act, nn.SELU) and len(outputs) == 29
    assert all(abs(float(h.mean())) < 0.2 and 0.8 < float(h.std()) < 1.2 for h in outputs)
    shrinking = [h for _, _, h in activation_outputs(deep_mlp(128, 10, depth=30, width=128, activation="elu",
                                                              init="lecun", seed=0), x)]
    assert float(shrinking[-1].std()) < 0.25  # ELU has no such fixed point
