import pytest
import torch
from torch import nn

from vgcourse.models import sequence_model
from vgcourse.probes.recurrence import gru_step, hidden_state_gradients, unrolled_states
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


def _cho_gru_step(core, x, h):
    # Cho et al. (2014), eqs. 5-8, written independently of gru_step, with PyTorch's weight names
    hidden = core.hidden_size
    w, u, b, c = core.weight_ih_l0, core.weight_hh_l0, core.bias_ih_l0, core.bias_hh_l0
    gate = lambda k, v, m: v @ m[k * hidden:(k + 1) * hidden].T
    bias = lambda k: b[k * hidden:(k + 1) * hidden] + c[k * hidden:(k + 1) * hidden]
    r = torch.sigmoid(gate(0, x, w) + gate(0, h, u) + bias(0))
    z = torch.sigmoid(gate(1, x, w) + gate(1, h, u) + bias(1))
    candidate = torch.tanh(gate(2, x, w) + gate(2, r * h, u) + bias(2))
    return z * h + (1 - z) * candidate


def test_gru_step_after_is_what_nn_gru_computes_and_before_is_chos_form():
    model = sequence_model(3, 5, 1, cell="gru", seed=0)
    core, x, h = model.core, torch.randn(4, 3), torch.randn(4, 5)
    with torch.no_grad():
        torch.nn.init.uniform_(core.bias_hh_l0, -1, 1)  # b_hn is where the two forms differ most
        _, fused = core(x[:, None], h[None])
        after, before = gru_step(core, x, h, "after"), gru_step(core, x, h, "before")
        cho = _cho_gru_step(core, x, h)
    torch.testing.assert_close(after, fused[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(before, cho, rtol=1e-5, atol=1e-6)
    assert float((after - before).abs().max()) > 1e-2  # the two forms are different functions


def test_gru_step_rejects_bad_arguments_naming_them():
    core = sequence_model(3, 5, 1, cell="gru").core
    x, h = torch.randn(2, 3), torch.randn(2, 5)
    with pytest.raises(TypeError, match="torch.nn.GRU.*LSTM"):
        gru_step(nn.LSTM(3, 5), x, h)
    with pytest.raises(ValueError, match="unknown reset place 'middle'; choose one of"):
        gru_step(core, x, h, "middle")
    with pytest.raises(ValueError, match=r"h must be a tensor of shape \(batch, 5\), got \(2, 4\)"):
        gru_step(core, x, torch.randn(2, 4))
    with pytest.raises(ValueError, match="3 and 2"):
        gru_step(core, torch.randn(3, 3), h)
    with pytest.raises(ValueError, match="num_layers=2"):
        gru_step(nn.GRU(3, 5, num_layers=2), x, h)
