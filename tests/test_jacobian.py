import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vgcourse.initialization import orthogonal_
from vgcourse.models import deep_mlp, linear_layers
from vgcourse.probes.jacobian import (
    ISOMETRY_BAND, best_scaled_share, isometry_share, jacobian, nonzero_count, singular_values, spectra_figure,
)

matplotlib.use("Agg")


def tanh_product(model, x, first, last):
    """J = D_last W_last ... D_first W_first written out by hand for a tanh MLP (D_L = I for the linear readout)."""
    linears = linear_layers(model)
    h = x.double()
    for linear in linears[:first - 1]:
        h = torch.tanh(linear.weight.double() @ h + linear.bias.double())
    product = torch.eye(len(h), dtype=torch.float64)
    for index in range(first - 1, last):
        linear = linears[index]
        z = linear.weight.double() @ h + linear.bias.double()
        slope = torch.ones_like(z) if index == len(linears) - 1 else 1 - torch.tanh(z) ** 2
        product = (slope[:, None] * linear.weight.double()) @ product
        h = z if index == len(linears) - 1 else torch.tanh(z)
    return product


@pytest.mark.parametrize("first, last", [(1, None), (2, 4), (3, 3), (1, 5)])
def test_jacobian_is_the_product_of_the_layer_jacobians(first, last):
    model = deep_mlp(6, 3, depth=5, width=7, activation="tanh", init="xavier", seed=1)
    torch.nn.init.normal_(model.layer2.linear.bias, std=0.3)  # nonzero biases move the D_l
    x = torch.randn(6, generator=torch.Generator().manual_seed(0))
    got = jacobian(model, x, first, last)
    expected = tanh_product(model, x, first, 5 if last is None else last)
    assert got.dtype == torch.float64 and got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(jacobian(model, x.unsqueeze(0), first, last), got)


def test_singular_values_match_numpy_and_an_orthogonal_linear_map_is_an_isometry_times_its_gain():
    model = deep_mlp(5, 4, depth=3, width=6, activation="relu", seed=2)
    x = torch.randn(1, 5)
    values = singular_values(model, x)
    assert np.allclose(values.numpy(), np.linalg.svd(jacobian(model, x).numpy(), compute_uv=False))
    assert (values[:-1] >= values[1:]).all()
    linear = orthogonal_(deep_mlp(8, 8, depth=1, width=8), gain=2.5, seed=3)
    expected = torch.full((8,), 2.5, dtype=torch.float64)
    assert torch.allclose(singular_values(linear, torch.randn(8)), expected, atol=1e-6)


def test_the_model_is_left_as_it_was_and_batch_norm_uses_its_running_statistics():
    model = deep_mlp(4, 2, depth=4, width=5, activation="tanh", batch_norm=True, seed=0)
    with torch.no_grad():
        model(torch.randn(64, 4) * 3)  # train mode: running statistics move away from (0, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4)
    got = jacobian(model, x)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None and p.dtype == torch.float32 for p in model.parameters())
    model.eval()
    reference = torch.autograd.functional.jacobian(lambda v: model.double()(v.unsqueeze(0)).squeeze(0), x.double())
    assert torch.allclose(got, reference, rtol=1e-8, atol=1e-10)


def test_a_relu_jacobian_has_no_more_nonzero_singular_values_than_active_units():
    model = deep_mlp(16, 3, depth=6, width=16, activation="relu", init="he", seed=4)
    x = torch.randn(16, generator=torch.Generator().manual_seed(1))
    values = singular_values(model, x, first=2, last=5)
    with torch.no_grad():
        h, active = x.unsqueeze(0), []
        for layer in list(model)[:5]:
            h = layer(h)
            active.append(int((h > 0).sum()))
    assert nonzero_count(values) <= min(active[1:]) < 16
    assert nonzero_count(singular_values(deep_mlp(16, 3, depth=6, width=16, activation="tanh", seed=4), x, 2, 5)) == 16


def test_isometry_shares_count_the_band_and_the_best_scaled_share_ignores_the_scale_and_the_zeros():
    values = np.array([4.0, 1.5, 1.0, 0.6, 0.3, 1e-20, 0.0, 0.0])
    assert isometry_share(values) == 3 / 8
    assert isometry_share(values, low=0.25, high=5) == 5 / 8
    assert isometry_share(torch.tensor(values)) == 3 / 8
    # best window of ratio 4: {1.5, 1.0, 0.6} or {1.0, 0.6, 0.3}, never the 1e-20 (a numerical zero)
    assert best_scaled_share(values) == 3 / 8
    for scale in (1e-30, 1e-3, 7.0, 1e12):
        assert best_scaled_share(values * scale) == best_scaled_share(values)
    assert best_scaled_share(np.ones(5) * 1e-9) == 1.0 and isometry_share(np.ones(5) * 1e-9) == 0.0
    assert best_scaled_share(np.zeros(3)) == 0.0 and nonzero_count(np.zeros(3)) == 0
    assert nonzero_count(values) == 5
    assert ISOMETRY_BAND == (0.5, 2.0)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: jacobian(torch.nn.Linear(3, 3), x), "DeepMLP"),
    (lambda m, x: jacobian(m, x.repeat(2, 1)), r"one input of shape \(3,\)"),
    (lambda m, x: jacobian(m, [0.0, 1.0, 2.0]), "tensor"),
    (lambda m, x: jacobian(m, x, first=0), "first must be an integer in"),
    (lambda m, x: jacobian(m, x, first=3, last=2), "last must be an integer in"),
    (lambda m, x: jacobian(m, x, last=5), "last must be an integer in"),
    (lambda m, x: isometry_share([]), "non-empty"),
    (lambda m, x: isometry_share([1.0, -0.5]), "non-negative"),
    (lambda m, x: isometry_share([1.0], low=2.0, high=1.0), "high must be"),
    (lambda m, x: best_scaled_share([[1.0, 2.0]]), "1-D"),
    (lambda m, x: spectra_figure({}), "non-empty"),
    (lambda m, x: spectra_figure({"panel": {}}), "non-empty mapping of label"),
])
def test_bad_arguments_are_named(call, message):
    model = deep_mlp(3, 2, depth=4, width=3)
    with pytest.raises((TypeError, ValueError), match=message):
        call(model, torch.randn(3))


def test_spectra_figure_draws_one_panel_per_entry_with_zeros_on_the_floor():
    spectra = {"tanh": {"a": [1.0, 0.9, 0.5], "b": [3.0, 1e-3, 0.0]}, "relu": {"c": np.array([2.0, 0.0])},
               "sigmoid": {"d": torch.tensor([1e-9, 1e-10], dtype=torch.float64)}, "extra": {"e": [1.0]}}
    fig = spectra_figure(spectra, title="spectra")
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == list(spectra)
    assert len(fig.axes) == 6  # two rows of three, the unused two switched off
    tanh = panels[0]
    (a, b) = [line for line in tanh.get_lines()]
    assert list(a.get_ydata()) == [1.0, 0.9, 0.5]
    floor = b.get_ydata()[-1]
    assert floor == pytest.approx(1e-4) and tanh.get_ylim()[0] < floor and tanh.get_yscale() == "log"
    assert math.isclose(panels[1].get_lines()[0].get_ydata()[-1], 0.05)  # min(2.0, 0.5) / 10
