import pytest
import torch
from torch import nn

from vgcourse.models import sequence_model
from vgcourse.probes.recurrence import hidden_state_gradients, unrolled_states
from vgcourse.training import task_loss

CELLS = ("rnn", "lstm", "gru")


@pytest.mark.parametrize("cell", CELLS)
def test_unrolled_states_match_the_fused_core(cell):
    model = sequence_model(3, 6, 2, cell=cell, seed=1)
    x = torch.randn(4, 7, 3)
    states, output = unrolled_states(model, x)
    fused, _ = model.core(x)
    assert len(states) == 7
    torch.testing.assert_close(torch.stack(states, dim=1), fused, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(output, model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_input_gradients_through_the_unrolled_states_match_the_fused_model(cell):
    model = sequence_model(3, 6, 1, cell=cell, seed=2)
    x, y = torch.randn(5, 9, 3), torch.randn(5, 1)
    x_fused = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(task_loss(model(x_fused), y), x_fused)
    x_unrolled = x.clone().requires_grad_(True)
    (actual,) = torch.autograd.grad(task_loss(unrolled_states(model, x_unrolled)[1], y), x_unrolled)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("cell", CELLS)
def test_unrolled_weight_gradients_reach_the_core(cell):
    model = sequence_model(2, 5, 1, cell=cell, seed=0)
    x, y = torch.randn(3, 6, 2), torch.randn(3, 1)
    expected = torch.autograd.grad(task_loss(model(x), y), list(model.core.parameters()))
    actual = torch.autograd.grad(task_loss(unrolled_states(model, x)[1], y), list(model.core.parameters()))
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-7)


def test_last_state_gradient_is_readout_weight_times_output_error():
    model = sequence_model(2, 4, 1, cell="rnn", seed=0)
    x, y = torch.randn(8, 5, 2), torch.randn(8, 1)
    norms = hidden_state_gradients(model, x, y)
    with torch.no_grad():
        out = model(x)
        expected = (2 * (out - y) / len(y)) @ model.readout.weight   # ∂MSE/∂h_T
    assert len(norms) == 5
    assert norms[-1] == pytest.approx(float(expected.norm()), rel=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_state_gradients_match_autograd_on_each_state(cell):
    model = sequence_model(2, 4, 1, cell=cell, seed=3)
    x, y = torch.randn(6, 5, 2), torch.randn(6, 1)
    states, output = unrolled_states(model, x)
    grads = torch.autograd.grad(task_loss(output, y), states)
    assert hidden_state_gradients(model, x, y) == pytest.approx([float(g.norm()) for g in grads], rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_vanilla_rnn_gradient_follows_the_backward_recursion():
    # For a tanh RNN, ∂L/∂h_{t-1} = W_hh^T ((1 - h_t^2) ⊙ ∂L/∂h_t); check it for every t.
    model = sequence_model(2, 4, 1, cell="rnn", seed=4)
    x, y = torch.randn(3, 6, 2), torch.randn(3, 1)
    states, output = unrolled_states(model, x)
    grads = torch.autograd.grad(task_loss(output, y), states)
    w_hh = model.core.weight_hh_l0
    for t in range(len(states) - 1, 0, -1):
        expected = ((1 - states[t] ** 2) * grads[t]) @ w_hh
        torch.testing.assert_close(grads[t - 1], expected, rtol=1e-5, atol=1e-8)


def test_unrolling_leaves_global_random_state_alone():
    model, x = sequence_model(2, 4, 1, cell="lstm"), torch.randn(2, 3, 2)
    before = torch.random.get_rng_state()
    unrolled_states(model, x)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_bad_inputs_name_the_bad_value():
    model = sequence_model(2, 4, 1, cell="gru")
    with pytest.raises(TypeError, match="SequenceModel.*Linear"):
        hidden_state_gradients(nn.Linear(2, 1), torch.randn(2, 3, 2), torch.randn(2, 1))
    with pytest.raises(ValueError, match=r"\(batch, time, 2\).*\(2, 3, 5\)"):
        hidden_state_gradients(model, torch.randn(2, 3, 5), torch.randn(2, 1))
    with pytest.raises(ValueError, match=r"3 and 2"):
        hidden_state_gradients(model, torch.randn(3, 4, 2), torch.randn(2, 1))
    with pytest.raises(TypeError, match="list"):
        hidden_state_gradients(model, [[0.0, 1.0]], torch.randn(1, 1))
    with pytest.raises(ValueError, match="num_layers=2"):
        unrolled_states(sequence_model(2, 4, 1, cell="lstm", num_layers=2), torch.randn(2, 3, 2))
