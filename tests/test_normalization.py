import pytest
import torch
from torch import nn

from vgcourse.models import deep_mlp
from vgcourse.probes.normalization import preactivations, train_eval_outputs


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
    with pytest.raises(ValueError, match="at least 2 examples"):
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
