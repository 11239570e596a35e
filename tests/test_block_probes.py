import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vgcourse.norm_blocks import block_stack
from vgcourse.probes.blocks import block_gradient_norms, layer_norm_gain, stream_gradient_norms, stream_jacobian


def _batch(n=16, features=8, classes=3):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, features, generator=generator), torch.randint(0, classes, (n,), generator=generator)


@pytest.mark.parametrize("placement", ["post", "pre", "none"])
def test_block_gradient_norms_are_the_norms_backward_leaves_in_grad(placement):
    model = block_stack(8, 3, depth=3, width=6, placement=placement, seed=2)
    x, y = _batch()
    norms = block_gradient_norms(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    F.cross_entropy(model(x), y).backward()
    expected = [math.hypot(float(b.linear1.weight.grad.norm()), float(b.linear2.weight.grad.norm())) for b in model.blocks]
    assert norms == pytest.approx(expected, rel=1e-5)


def test_stream_gradient_norms_match_retained_gradients_and_are_flat_for_zero_branches():
    model = block_stack(8, 3, depth=3, width=6, placement="post", seed=1)
    x, y = _batch()
    states = [model.embed(x)]
    for block in model.blocks:
        states[-1].retain_grad()
        states.append(block(states[-1]))
    states[-1].retain_grad()
    F.cross_entropy(model.head(model.final(states[-1])), y).backward()
    assert stream_gradient_norms(model, x, y) == pytest.approx([float(s.grad.norm()) for s in states], rel=1e-5)
    flat = stream_gradient_norms(block_stack(8, 3, depth=4, width=6, placement="pre", zero_branches=True), x, y)
    assert len(flat) == 5 and max(flat) == min(flat) > 0


def test_stream_jacobian_matches_finite_differences():
    model = block_stack(8, 3, depth=2, width=5, placement="post", seed=3).double()
    x = torch.randn(8, dtype=torch.float64)
    jacobian = stream_jacobian(model, x)
    start, step = model.embed(x).detach(), 1e-6

    def blocks(h):
        for block in model.blocks:
            h = block(h)
        return h

    columns = [(blocks(start + step * e) - blocks(start - step * e)) / (2 * step) for e in torch.eye(5, dtype=torch.float64)]
    assert torch.allclose(jacobian, torch.stack(columns, dim=1), atol=1e-6)
    zero = block_stack(8, 3, depth=4, width=5, placement="none", zero_branches=True)
    assert torch.equal(stream_jacobian(zero, torch.randn(8)), torch.eye(5))


@pytest.mark.parametrize(("width", "std"), [(3, 0.7), (16, 2.0), (64, 4.0)])
def test_layer_norm_gain_is_the_closed_form_for_inputs_of_exact_std(width, std):
    rows = std * F.layer_norm(torch.randn(10, width, dtype=torch.float64), (width,), eps=0.0)
    norm = nn.LayerNorm(width).double()
    expected = math.sqrt((width - 2) / width) / math.sqrt(std ** 2 + norm.eps)
    assert layer_norm_gain(norm, rows) == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        norm.weight.fill_(3.0)   # the scale multiplies the Jacobian
    assert layer_norm_gain(norm, rows) == pytest.approx(3 * expected, rel=1e-6)


def test_errors_name_the_problem():
    model = block_stack(8, 3, depth=2, width=5)
    with pytest.raises(TypeError, match="BlockStack"):
        block_gradient_norms(nn.Linear(8, 3), *_batch())
    with pytest.raises(ValueError, match="different numbers of examples"):
        stream_gradient_norms(model, torch.randn(4, 8), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"one example, a tensor of shape \(8,\), got \(2, 8\)"):
        stream_jacobian(model, torch.randn(2, 8))
    with pytest.raises(TypeError, match="nn.LayerNorm"):
        layer_norm_gain(nn.BatchNorm1d(4), torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"batch of shape \(n, 4\), got \(3, 5\)"):
        layer_norm_gain(nn.LayerNorm(4), torch.randn(3, 5))
