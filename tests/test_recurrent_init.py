"""vgcourse.recurrent_init: forget-gate bias, identity and orthogonal recurrent weights, in place."""

import pytest
import torch

from vgcourse.models import sequence_model
from vgcourse.probes.recurrence import hidden_state_gradients
from vgcourse.recurrent_init import FORGET_GATE, forget_bias_, identity_recurrence_, orthogonal_recurrence_


def test_forget_bias_sets_the_gates_total_bias_and_nothing_else():
    model = sequence_model(2, 6, 1, cell="lstm", seed=1)
    before = {name: p.clone() for name, p in model.named_parameters()}
    assert forget_bias_(model, 1.0) is model
    core, h = model.core, 6
    forget = slice(FORGET_GATE * h, (FORGET_GATE + 1) * h)
    torch.testing.assert_close((core.bias_ih_l0 + core.bias_hh_l0)[forget], torch.ones(h))
    for name, p in model.named_parameters():
        if name.startswith("core.bias"):
            keep = torch.ones(4 * h, dtype=torch.bool)
            keep[forget] = False
            assert torch.equal(p[keep], before[name][keep])   # input, cell and output gates untouched
        else:
            assert torch.equal(p, before[name])


def test_forget_gate_is_pytorchs_second_block():
    # nn.LSTM's gates are (input, forget, cell, output): a huge forget bias makes the cell keep c_0
    model = forget_bias_(sequence_model(1, 3, 1, cell="lstm", seed=0), 50.0)
    core = model.core
    with torch.no_grad():
        core.weight_ih_l0.zero_()
        core.weight_hh_l0.zero_()
        c0 = torch.tensor([[[0.5, -0.25, 0.75]]])
        _, (_, c) = core(torch.zeros(1, 4, 1), (torch.zeros(1, 1, 3), c0))
    input_gate = torch.sigmoid(core.bias_ih_l0[:3] + core.bias_hh_l0[:3])
    cell = torch.tanh(core.bias_ih_l0[6:9] + core.bias_hh_l0[6:9])
    expected = c0[0, 0]
    for _ in range(4):
        expected = expected + input_gate * cell   # forget gate σ(50) = 1 in float32
    torch.testing.assert_close(c[0, 0], expected)


def test_identity_recurrence_copies_the_state_of_a_relu_rnn():
    model = identity_recurrence_(sequence_model(2, 5, 1, cell="rnn", seed=0, nonlinearity="relu"))
    core = model.core
    assert torch.equal(core.weight_hh_l0, torch.eye(5))
    assert not core.bias_ih_l0.any() and not core.bias_hh_l0.any()
    with torch.no_grad():
        h0 = torch.rand(1, 3, 5)
        states, _ = core(torch.zeros(3, 7, 2), h0)
    torch.testing.assert_close(states[:, -1], h0[0])   # no input: every step copies the state


def test_identity_recurrence_keeps_the_gradient_of_active_units():
    model = identity_recurrence_(sequence_model(2, 8, 1, cell="rnn", seed=0, nonlinearity="relu"))
    x = torch.rand(16, 20, 2)
    grads = hidden_state_gradients(model, x, torch.rand(16, 1))
    assert 0.1 < grads[0] / grads[-1] <= 1.0 + 1e-6   # a tanh RNN at PyTorch's init loses orders of magnitude


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_orthogonal_recurrence_sets_every_gate_blocks_singular_values(cell):
    model = orthogonal_recurrence_(sequence_model(2, 6, 1, cell=cell, seed=0), gain=2.0, seed=3)
    for block in model.core.weight_hh_l0.split(6):
        torch.testing.assert_close(torch.linalg.svdvals(block), torch.full((6,), 2.0))
    again = orthogonal_recurrence_(sequence_model(2, 6, 1, cell=cell, seed=0), gain=2.0, seed=3)
    assert torch.equal(again.core.weight_hh_l0, model.core.weight_hh_l0)


def test_orthogonal_recurrence_leaves_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    orthogonal_recurrence_(sequence_model(2, 4, 1, cell="rnn"), gain=1.0, seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("call, error, message", [
    (lambda: forget_bias_(sequence_model(2, 4, 1, cell="gru")), ValueError, "needs an LSTM core, got GRU"),
    (lambda: forget_bias_(torch.nn.LSTM(2, 4)), TypeError, "model must be a vgcourse.models.SequenceModel"),
    (lambda: forget_bias_(sequence_model(2, 4, 1, cell="lstm"), float("nan")), ValueError, "value"),
    (lambda: identity_recurrence_(sequence_model(2, 4, 1, cell="lstm")), ValueError, "needs an RNN core, got LSTM"),
    (lambda: identity_recurrence_(sequence_model(2, 4, 1, cell="rnn"), gain=0), ValueError, "gain"),
    (lambda: orthogonal_recurrence_(sequence_model(2, 4, 1, cell="rnn", num_layers=2)), ValueError, "single-layer"),
    (lambda: orthogonal_recurrence_(sequence_model(2, 4, 1, cell="rnn"), seed=-1), ValueError, "seed"),
])
def test_bad_arguments_are_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()
