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


def test_selu_constants_are_the_ones_pytorch_uses():
    from torch.nn import functional as F

    from vgcourse.activations import SELU_ALPHA, SELU_SCALE

    x = torch.tensor([1.0, -50.0], dtype=torch.float64)
    expected = torch.tensor([SELU_SCALE, -SELU_SCALE * SELU_ALPHA], dtype=torch.float64)
    torch.testing.assert_close(F.selu(x), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(nn.SELU()(x), expected, rtol=0, atol=1e-12)
    assert SELU_SCALE == pytest.approx(1.0507, abs=1e-4) and SELU_ALPHA == pytest.approx(1.6733, abs=1e-4)


def test_elu_and_selu_derivatives_and_their_bounds():
    from vgcourse.activations import ELU_ALPHA, SELU_ALPHA, SELU_SCALE

    assert ELU_ALPHA == 1.0 and get_activation("elu").module().alpha == ELU_ALPHA
    assert derivative_bound("elu") == 1.0 and get_activation("elu").sup_at is None  # every x >= 0
    assert derivative_bound("selu") == SELU_SCALE * SELU_ALPHA and get_activation("selu").sup_at == 0.0
    assert derivative_bound("selu") == pytest.approx(1.7581, abs=1e-4)  # SELU can amplify a gradient
    # at the kink both follow PyTorch: the negative side's slope
    assert float(derivative("elu", 0.0)) == 1.0 and float(derivative("selu", 0.0)) == SELU_SCALE * SELU_ALPHA
    assert float(derivative("selu", 2.0)) == SELU_SCALE
    assert float(derivative("elu", -3.0)) == pytest.approx(math.exp(-3.0), rel=1e-12)


def test_elu_and_selu_are_course_activations_everywhere():
    from torch.nn import functional as F

    from vgcourse.activations import ACTIVATION_MODULES, FUNCTIONAL_ACTIVATIONS, OTHER_ACTIVATION_MODULES, activation_kind

    for name, cls in (("elu", nn.ELU), ("selu", nn.SELU)):
        assert ACTIVATION_MODULES[cls] == name and cls not in OTHER_ACTIVATION_MODULES
        assert activation_kind(cls()) == name and isinstance(get_activation(name).module(), cls)
    assert activation_kind(nn.CELU()) == "celu"  # CELU is not an ELU subclass
    assert FUNCTIONAL_ACTIVATIONS[F.selu] == FUNCTIONAL_ACTIVATIONS[torch.selu] == "selu"
    assert FUNCTIONAL_ACTIVATIONS[F.elu] == "elu"


def test_normal_moments_match_closed_forms():
    from vgcourse.activations import normal_moments

    # SELU's defining property (Klambauer et al. 2017): N(0, 1) in, mean 0 and variance 1 out
    selu = normal_moments("selu")
    assert abs(selu.mean) < 1e-12 and selu.second_moment == pytest.approx(1, abs=1e-12)
    assert selu.variance == pytest.approx(1, abs=1e-12) and selu.slope_square == pytest.approx(1.0716, abs=1e-4)
    # ReLU of N(mu, q): E = mu Phi(mu/s) + s phi(mu/s), E[f^2] = (mu^2 + q) Phi(mu/s) + mu s phi(mu/s), E[f'^2] = Phi(mu/s)
    for mu, q in ((0.0, 4.0), (0.7, 0.25), (-1.5, 2.0)):
        s = math.sqrt(q)
        phi, Phi = math.exp(-0.5 * (mu / s) ** 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(mu / s / math.sqrt(2)))
        m = normal_moments("relu", q, mu)
        assert m.mean == pytest.approx(mu * Phi + s * phi, rel=1e-10)
        assert m.second_moment == pytest.approx((mu**2 + q) * Phi + mu * s * phi, rel=1e-10)
        assert m.slope_square == pytest.approx(Phi, rel=1e-10) and m.variance == pytest.approx(m.second_moment - m.mean**2)
    # a Monte Carlo cross-check for a smooth activation, far from 0
    z = 3.0 + 0.5 * torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tanh = normal_moments("tanh", 0.25, 3.0)
    assert tanh.mean == pytest.approx(float(torch.tanh(z).mean()), abs=1e-4)
    assert tanh.slope_square == pytest.approx(float(((1 - torch.tanh(z) ** 2) ** 2).mean()), rel=1e-2)


def test_elu_has_no_fixed_point_and_selu_one_at_variance_1():
    from vgcourse.activations import normal_moments

    for q in (1e-3, 0.1, 1.0, 10.0, 1e3):
        assert 0.5 < normal_moments("elu", q).second_moment / q < 1  # ELU(z)² ≤ z², equal for z > 0
    ratios = [normal_moments("selu", q).second_moment / q for q in (0.5, 0.9, 1.0, 1.1, 2.0)]
    assert ratios[0] > ratios[1] > 1 > ratios[3] > ratios[4] and ratios[2] == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"name": "swish"}, ValueError, "unknown activation 'swish'"),
    ({"variance": 0.0}, ValueError, "variance must be a positive finite number, got 0.0"),
    ({"variance": float("inf")}, ValueError, "variance must be"),
    ({"variance": "1"}, ValueError, "variance must be"),
    ({"mean": float("nan")}, ValueError, "mean must be a finite number"),
])
def test_normal_moments_reject_bad_arguments(kwargs, error, message):
    from vgcourse.activations import normal_moments

    with pytest.raises(error, match=message):
        normal_moments(**{"name": "selu", **kwargs})
