import pytest
import torch
from torch import nn

from vgcourse.probes.hidden_states import (hidden_gradient_norms, hidden_state_norms, hidden_state_spreads,
                                           signal_decay_factor)
from vgcourse.probes.layers import fitted_decay_factor
from vgcourse.models import deep_mlp
from vgcourse.training import task_loss


def test_hidden_gradient_norms_match_autograd_on_each_layer_output():
    model = deep_mlp(5, 3, depth=4, width=8, activation="tanh")
    x, y = torch.randn(10, 5), torch.randint(0, 3, (10,))
    h1 = model.layer1(x)
    h2 = model.layer2(h1)
    h3 = model.layer3(h2)
    expected = torch.autograd.grad(task_loss(model.layer4(h3), y), [h1, h2, h3])
    norms = hidden_gradient_norms(model, x, y)
    assert norms == pytest.approx([float(g.norm()) for g in expected], rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_hidden_state_norms_are_rms_sizes():
    model = deep_mlp(5, 3, depth=3, width=8, activation="sigmoid")
    x = torch.randn(7, 5)
    with torch.no_grad():
        h1 = model.layer1(x)
        h2 = model.layer2(h1)
    assert hidden_state_norms(model, x) == pytest.approx(
        [float(h1.pow(2).mean().sqrt()), float(h2.pow(2).mean().sqrt())], rel=1e-6)


def test_residual_sigmoid_states_grow_and_the_gradient_stays_flat():
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    plain = deep_mlp(8, 4, depth=30, width=16, activation="sigmoid")
    residual = deep_mlp(8, 4, depth=30, width=16, activation="sigmoid", residual=True)
    g_plain, g_res = hidden_gradient_norms(plain, x, y), hidden_gradient_norms(residual, x, y)
    assert g_plain[0] < 1e-10 * g_plain[-1]
    assert 0.5 < g_res[0] / g_res[-1] < 2
    sizes = hidden_state_norms(residual, x)
    assert sizes[-1] > 5 * sizes[1]  # each block adds a positive sigmoid output


def test_errors_name_the_problem():
    model = deep_mlp(5, 3, depth=3, width=8)
    with pytest.raises(TypeError, match="DeepMLP"):
        hidden_state_norms(nn.Sequential(nn.Linear(5, 3)), torch.randn(2, 5))
    with pytest.raises(ValueError, match="no hidden layers"):
        hidden_state_norms(deep_mlp(5, 3, depth=1, width=8), torch.randn(2, 5))
    with pytest.raises(ValueError, match="different numbers of examples"):
        hidden_gradient_norms(model, torch.randn(4, 5), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty batch"):
        hidden_state_norms(model, torch.randn(0, 5))


def test_hidden_state_spreads_are_the_mean_std_over_the_batch():
    model = deep_mlp(5, 3, depth=3, width=8, activation="tanh")
    x = torch.randn(9, 5)
    with torch.no_grad():
        h1 = model.layer1(x)
        h2 = model.layer2(h1)
    expected = [float(h.double().std(0, unbiased=True).mean()) for h in (h1, h2)]
    assert hidden_state_spreads(model, x) == pytest.approx(expected, rel=1e-6)
    # the same input in every row has no spread at all
    assert hidden_state_spreads(model, x[:1].repeat(4, 1)) == pytest.approx([0.0, 0.0], abs=1e-7)


def test_deep_sigmoid_forward_spread_shrinks_like_the_backward_gradient():
    # The forward pass applies J_l = diag(σ'(z_l)) W_l to a change of the input; the backward pass
    # applies J_l^T: with the default init both lose about σ'·/√3 ≈ 0.14 per layer.
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 16, generator=generator), torch.randint(0, 4, (128,), generator=generator)
    model = deep_mlp(16, 4, depth=10, width=64, activation="sigmoid", seed=0)
    spreads, grads = hidden_state_spreads(model, x), hidden_gradient_norms(model, x, y)
    forward = fitted_decay_factor(spreads)          # layer 1 -> 9
    backward = fitted_decay_factor(grads[::-1])     # layer 9 -> 1
    assert 0.1 < forward < 0.2 and 0.1 < backward < 0.2
    assert abs(forward / backward - 1) < 0.1
    assert spreads[-1] < 1e-5 * spreads[0]


def test_hidden_state_spreads_need_two_examples():
    model = deep_mlp(5, 3, depth=3, width=8)
    with pytest.raises(ValueError, match="at least two examples, got a batch of 1"):
        hidden_state_spreads(model, torch.randn(1, 5))
    with pytest.raises(TypeError, match="DeepMLP"):
        hidden_state_spreads(nn.Sequential(nn.Linear(5, 3)), torch.randn(2, 5))


def test_signal_decay_factor_fits_the_backward_signal_from_the_last_hidden_layer_back():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=generator), torch.randint(0, 3, (64,), generator=generator)
    model = deep_mlp(6, 3, depth=8, width=32, activation="sigmoid", seed=0)
    norms = hidden_gradient_norms(model, x, y)                    # h_1 ... h_7
    assert signal_decay_factor(model, x, y) == pytest.approx(fitted_decay_factor(norms[1:][::-1]))
    assert signal_decay_factor(model, x, y, first=1) == pytest.approx(fitted_decay_factor(norms[::-1]))
    # an independent check of the direction: the signal shrinks toward the input, so the factor is < 1
    assert signal_decay_factor(model, x, y) < 0.5
    assert norms[1] / norms[-1] == pytest.approx(signal_decay_factor(model, x, y) ** 5, rel=0.5)


@pytest.mark.parametrize("first", [0, 7, 2.0, True])
def test_signal_decay_factor_rejects_a_bad_first_layer(first):
    model = deep_mlp(6, 3, depth=8, width=8)
    with pytest.raises(ValueError, match=r"first must be a hidden layer before the last one \(1 to 6\)"):
        signal_decay_factor(model, torch.randn(4, 6), torch.zeros(4, dtype=torch.int64), first=first)
