import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vgcourse.norm_blocks import PLACEMENTS, BlockStack, NormBlock, block_stack, zero_branches_


def _randomize_norm(block):
    with torch.no_grad():
        if isinstance(block.norm, nn.LayerNorm):
            block.norm.weight.uniform_(0.5, 1.5)
            block.norm.bias.normal_()


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_a_block_computes_its_formula(placement):
    torch.manual_seed(0)
    block = NormBlock(6, 10, placement)
    _randomize_norm(block)
    x = torch.randn(4, 6, dtype=torch.float64) * 3 + 1
    block = block.double()

    def ln(h):
        mean, var = h.mean(-1, keepdim=True), h.var(-1, unbiased=False, keepdim=True)
        return (h - mean) / torch.sqrt(var + 1e-5) * block.norm.weight + block.norm.bias

    def branch(h):
        return F.relu(h @ block.linear1.weight.T + block.linear1.bias) @ block.linear2.weight.T + block.linear2.bias

    expected = {"post": lambda: ln(x + branch(x)), "pre": lambda: x + branch(ln(x)), "none": lambda: x + branch(x)}
    assert torch.allclose(block(x), expected[placement](), atol=1e-12)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_block_stack_shape_init_and_final_norm(placement):
    model = block_stack(64, 10, depth=3, width=96, hidden=160, placement=placement, seed=1)
    assert isinstance(model, BlockStack) and len(model.blocks) == 3 and model.placement == placement
    assert isinstance(model.final, nn.LayerNorm) == (placement == "pre")
    assert all(isinstance(b.norm, nn.LayerNorm) == (placement != "none") for b in model.blocks)
    w = model.blocks[1].linear1.weight  # Xavier normal: std sqrt(2 / (fan_in + fan_out))
    assert float(w.detach().std()) == pytest.approx(math.sqrt(2 / (96 + 160)), rel=0.05)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, nn.Linear))
    assert model(torch.randn(5, 64)).shape == (5, 10)
    assert model.blocks[0].linear2.weight.shape == (96, 160)
    assert block_stack(64, 10, 1, 8).blocks[0].linear1.out_features == 16  # hidden defaults to 2 * width


def test_block_stack_depends_only_on_its_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = block_stack(8, 3, 2, 4, seed=5), block_stack(8, 3, 2, 4, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.embed.weight, block_stack(8, 3, 2, 4, seed=6).embed.weight)


@pytest.mark.parametrize("placement", ["pre", "none"])
def test_zero_branches_make_every_block_the_identity_and_keep_linear1(placement):
    model = block_stack(8, 3, depth=5, width=6, placement=placement, zero_branches=True)
    states = model.stream(torch.randn(4, 8))
    assert all(torch.equal(s, states[0]) for s in states)
    assert all(float(b.linear1.weight.detach().abs().max()) > 0 for b in model.blocks)
    assert all(float(b.linear2.weight.detach().abs().max()) == 0 == float(b.linear2.bias.detach().abs().max()) for b in model.blocks)


def test_zero_branches_on_post_ln_still_normalizes():
    model = block_stack(8, 3, depth=2, width=6, placement="post", zero_branches=True)
    states = model.stream(torch.randn(4, 8) * 5)
    assert torch.allclose(states[1], F.layer_norm(states[0], (6,)), atol=1e-6)
    assert not torch.allclose(states[1], states[0])


def test_zero_branches_rejects_what_it_cannot_zero():
    with pytest.raises(TypeError, match="Module"):
        zero_branches_("model")
    with pytest.raises(TypeError, match="no NormBlock"):
        zero_branches_(nn.Linear(2, 2))
    block = NormBlock(4, 5)
    assert zero_branches_(block) is block and float(block.linear2.weight.detach().abs().max()) == 0


def test_errors_name_the_bad_value_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"placement must be one of \['post', 'pre', 'none'\], got 'middle'"):
        block_stack(8, 3, 2, 4, placement="middle")
    with pytest.raises(ValueError, match="width must be an integer >= 2, got 1"):
        block_stack(8, 3, 2, 1)
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        block_stack(8, 3, 0, 4)
    with pytest.raises(ValueError, match="zero_branches must be True or False"):
        block_stack(8, 3, 2, 4, zero_branches=1)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 8\), got \(2, 7\)"):
        block_stack(8, 3, 2, 4)(torch.randn(2, 7))
