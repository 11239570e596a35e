import pytest
import torch
from torch import nn

from vgcourse.models import deep_mlp
from torch.nn import functional as F

from vgcourse.probes.normalization import norm_backward_gains, preactivations, train_eval_outputs


def _bn_model(**kwargs):
    return deep_mlp(6, 3, depth=4, width=16, activation="sigmoid", batch_norm=True, **kwargs)


def test_preactivations_in_train_mode_are_normalized_per_unit():
    model = _bn_model(weight_scale=5.0)
    x = torch.randn(64, 6) * 3 + 1
    records = preactivations(model, x, mode="train")
    assert [(label, kind) for label, kind, _ in records] == [
        ("layer 1", "sigmoid"), ("layer 2", "sigmoid"), ("layer 3", "sigmoid")]
    for _, _, z in records:
        assert z.shape == (64, 16)
        assert torch.allclose(z.mean(0), torch.zeros(16), atol=1e-5)
        assert torch.allclose(z.std(0, unbiased=False), torch.ones(16), atol=1e-2)


def test_linear_preactivations_are_the_linear_outputs_before_the_norm():
    model = _bn_model()
    x = torch.randn(32, 6)
    (_, _, z1), *_ = preactivations(model, x, where="linear")
    assert torch.allclose(z1, model.layer1.linear(x).detach(), atol=1e-6)
    plain = deep_mlp(6, 3, depth=4, width=16, activation="tanh")
    a = preactivations(plain, x, where="linear")
    b = preactivations(plain, x, where="activation")
    assert all(torch.equal(p[2], q[2]) for p, q in zip(a, b))  # no norm: the same values


def test_eval_mode_uses_running_averages_and_nothing_is_changed():
    model = _bn_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(32, 6) * 4 + 2
    (_, _, z_eval), *_ = preactivations(model, x, mode="eval")
    # fresh running averages are mean 0, var 1, so eval mode passes W x + b through (almost) unchanged
    assert torch.allclose(z_eval, model.layer1.linear(x).detach() / (1 + 1e-5) ** 0.5, atol=1e-5)
    train_eval_outputs(model, x)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training


def test_train_and_eval_outputs_differ_only_with_batch_norm():
    x = torch.randn(16, 6) * 2
    bn_train, bn_eval = train_eval_outputs(_bn_model(), x)
    assert (bn_train - bn_eval).abs().max() > 1e-2
    plain_train, plain_eval = train_eval_outputs(deep_mlp(6, 3, depth=4, width=16), x)
    assert torch.equal(plain_train, plain_eval)


def test_errors_name_the_problem():
    model = _bn_model()
    with pytest.raises(ValueError, match="at least 2 examples.*every normalized value would be 0"):
        train_eval_outputs(model, torch.randn(1, 6))
    with pytest.raises(ValueError, match="unknown mode 'test'"):
        preactivations(model, torch.randn(4, 6), mode="test")
    with pytest.raises(ValueError, match="unknown where 'after'"):
        preactivations(model, torch.randn(4, 6), where="after")
    with pytest.raises(ValueError, match="no course layers"):
        preactivations(nn.Sequential(nn.Linear(6, 3)), torch.randn(4, 6))
    with pytest.raises(ValueError, match="empty batch"):
        preactivations(model, torch.randn(0, 6))
    with pytest.raises(TypeError, match="model must be"):
        train_eval_outputs("model", torch.randn(4, 6))


def test_norm_backward_gains_match_a_forward_pass_written_out_by_hand():
    model = _bn_model(weight_scale=3.0)
    with torch.no_grad():
        for layer in list(model)[:-1]:
            layer.norm.weight.uniform_(0.5, 2.0)   # gamma != 1, so the gain is gamma / sigma, not 1 / sigma
    x, y = torch.randn(32, 6) * 2, torch.randint(0, 3, (32,))
    h, inputs, outputs = x, [], []
    for layer in list(model)[:-1]:
        z = layer.linear(h)
        z_hat = F.batch_norm(z, None, None, layer.norm.weight, layer.norm.bias, training=True, eps=layer.norm.eps)
        inputs.append(z)
        outputs.append(z_hat)
        h = torch.sigmoid(z_hat)
    grads = torch.autograd.grad(F.cross_entropy(list(model)[-1](h), y), inputs + outputs)
    by_hand = [float(grads[i].norm() / grads[i + 3].norm()) for i in range(3)]
    assert norm_backward_gains(model, x, y) == pytest.approx(by_hand, rel=1e-5)


def test_norm_backward_gain_scales_as_one_over_the_batch_spread():
    x, y = torch.randn(256, 6), torch.randint(0, 3, (256,))
    small, large = _bn_model(seed=1), _bn_model(seed=1)
    with torch.no_grad():
        large.layer1.linear.weight.mul_(4.0)   # the same network, but layer 1's W h spreads 4 times as much
    (_, _, z), *_ = preactivations(small, x, where="linear")
    gain_small, gain_large = norm_backward_gains(small, x, y), norm_backward_gains(large, x, y)
    # batch norm undoes the scale going forward, so only layer 1's gain changes: divided by 4
    assert gain_large[0] == pytest.approx(gain_small[0] / 4, rel=1e-4)
    assert gain_large[1:] == pytest.approx(gain_small[1:], rel=1e-4)
    # gamma = 1: each unit's gradient is multiplied by 1/sigma_B and then loses its batch mean and its part
    # along z_hat, so the gain lies below the largest 1/sigma_B and, for a batch of 256, not far below the smallest
    one_over_sigma = 1 / (z.var(0, unbiased=False) + 1e-5).sqrt()
    assert 0.8 * float(one_over_sigma.min()) < gain_small[0] <= float(one_over_sigma.max())


def test_norm_backward_gains_leave_the_model_as_it_was_and_name_bad_input():
    model = _bn_model()
    model.eval()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gains = norm_backward_gains(model, torch.randn(16, 6), torch.randint(0, 3, (16,)))
    assert len(gains) == 3 and all(g > 0 for g in gains)
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())
    with pytest.raises(ValueError, match="no batch-norm layer"):
        norm_backward_gains(deep_mlp(6, 3, depth=3, width=8), torch.randn(4, 6), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2 examples, got 1"):
        norm_backward_gains(model, torch.randn(1, 6), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="different numbers of examples"):
        norm_backward_gains(model, torch.randn(4, 6), torch.zeros(3, dtype=torch.int64))
