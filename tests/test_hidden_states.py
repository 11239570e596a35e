import pytest
import torch
from torch import nn

from vgcourse.probes.hidden_states import hidden_gradient_norms, hidden_state_norms
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
