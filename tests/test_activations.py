import math

import pytest
import torch
from torch import nn

from vgcourse.activations import (
    ACTIVATIONS,
    activate,
    derivative,
    derivative_bound,
    get_activation,
    product_bound,
    saturated_fraction,
    saturated_mask,
)

GRID = torch.linspace(-8, 8, 4001, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_analytic_derivative_matches_autograd_on_a_dense_grid(name):
    # Skip the exact kink at 0, where ReLU-type derivatives are a convention.
    x = GRID[GRID != 0].clone().requires_grad_(True)
    (autograd,) = torch.autograd.grad(activate(name, x).sum(), x)
    torch.testing.assert_close(derivative(name, x.detach()), autograd, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_module_computes_the_same_function(name):
    x = GRID.float()
    torch.testing.assert_close(get_activation(name).module()(x), activate(name, x))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_never_exceeds_its_bound_and_reaches_it(name):
    bound = derivative_bound(name)
    values = derivative(name, GRID)
    assert float(values.max()) <= bound + 1e-12
    assert float(values.max()) == pytest.approx(bound, abs=1e-4)
    at = get_activation(name).sup_at
    if at is not None:
        assert float(derivative(name, at)) == pytest.approx(bound, abs=1e-12)


def test_textbook_bounds():
    assert derivative_bound("sigmoid") == 0.25
    assert derivative_bound("tanh") == 1.0
    assert get_activation("sigmoid").sup_at == 0.0
    assert get_activation("tanh").sup_at == 0.0
    # GELU' = Φ(x) + x φ(x) peaks at √2 above 1: GELU can amplify a gradient slightly.
    assert derivative_bound("gelu") == pytest.approx(1.1289, abs=1e-4)


def test_derivatives_fall_off_fast():
    assert float(derivative("sigmoid", 5.0)) == pytest.approx(0.006648, rel=1e-3)
    assert float(derivative("tanh", 3.0)) == pytest.approx(0.009866, rel=1e-3)


def test_tanh_is_a_rescaled_sigmoid():
    torch.testing.assert_close(derivative("tanh", GRID), 4 * derivative("sigmoid", 2 * GRID))


def test_product_bound():
    assert product_bound("sigmoid", 10) == pytest.approx(0.25**10)
    assert product_bound("tanh", 10) == 1.0
    assert product_bound("sigmoid", 0) == 1.0


@pytest.mark.parametrize("depth", [-1, 2.5, "3", True])
def test_product_bound_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match="depth must be a non-negative integer"):
        product_bound("sigmoid", depth)


@pytest.mark.parametrize("bad", ["softmax", "Sigmoid", "", None])
def test_unknown_activation_names_the_value_and_the_choices(bad):
    with pytest.raises(ValueError, match="unknown activation") as info:
        get_activation(bad)
    assert repr(bad) in str(info.value)
    assert "sigmoid" in str(info.value) and "gelu" in str(info.value)


def test_non_float_input_is_rejected_clearly():
    with pytest.raises(TypeError, match="floating-point"):
        derivative("sigmoid", torch.arange(3))
    with pytest.raises(TypeError, match="float"):
        activate("tanh", "1.0")


def test_saturated_mask_sigmoid_and_tanh():
    sig = torch.tensor([0.01, 0.04, 0.5, 0.96, 0.99])
    assert saturated_mask("sigmoid", sig).tolist() == [True, True, False, True, True]
    tanh = torch.tensor([-0.99, -0.9, 0.0, 0.9, 0.97])
    assert saturated_mask("tanh", tanh).tolist() == [True, False, False, False, True]
    assert saturated_fraction("tanh", tanh) == pytest.approx(0.4)
    assert saturated_fraction("tanh", tanh, margin=0.15) == pytest.approx(0.8)


def test_saturation_is_where_the_derivative_is_small():
    x = GRID.float()
    mask = saturated_mask("sigmoid", torch.sigmoid(x))
    assert float(derivative("sigmoid", x)[mask].max()) < 0.048
    mask = saturated_mask("tanh", torch.tanh(x))
    assert float(derivative("tanh", x)[mask].max()) < 0.098


def test_saturation_rejects_non_saturating_activations_and_bad_margins():
    with pytest.raises(ValueError, match="dead units"):
        saturated_mask("relu", torch.zeros(3))
    with pytest.raises(ValueError, match="unknown activation"):
        saturated_mask("swish", torch.zeros(3))
    with pytest.raises(ValueError, match="margin must be"):
        saturated_mask("sigmoid", torch.zeros(3), margin=0.7)
    with pytest.raises(ValueError, match="empty"):
        saturated_fraction("sigmoid", torch.zeros(0))


def test_activation_kind_knows_the_course_pytorch_and_library_activations() -> None:
    from vgcourse.activations import activation_kind

    class NewGELUActivation(nn.Module):  # as Hugging Face names theirs
        def forward(self, x):
            return x

    class ReLUSquaredActivation(nn.Module):
        def forward(self, x):
            return torch.relu(x) ** 2

    class ScaledTanh(nn.Module):  # a word in the name, but it has a weight: not an activation
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1))

    assert activation_kind(nn.Sigmoid()) == "sigmoid" and activation_kind(nn.ReLU(inplace=True)) == "relu"
    assert activation_kind(nn.SiLU()) == "silu" and activation_kind(nn.Hardswish()) == "hardswish"
    assert activation_kind(NewGELUActivation()) == "other" and activation_kind(ReLUSquaredActivation()) == "relu"
    for module in (nn.Linear(2, 2), nn.Dropout(), nn.LayerNorm(2), nn.MultiheadAttention(4, 2), ScaledTanh()):
        assert activation_kind(module) is None
