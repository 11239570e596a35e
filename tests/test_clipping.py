import math

import pytest
import torch
from torch import nn

from vgcourse.clipping import Clipper, clip_by_norm, clip_by_value, flat_gradient, record_only, total_norm
from vgcourse.data import spirals
from vgcourse.models import deep_mlp
from vgcourse.training import train


def _model_with_gradient(seed=0, scale=1.0):
    model = deep_mlp(4, 3, depth=3, width=8, activation="relu", init="he", weight_scale=scale, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    nn.functional.cross_entropy(model(x), y).backward()
    return model


def test_total_norm_is_the_norm_of_the_flat_gradient():
    model = _model_with_gradient()
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert total_norm(model) == pytest.approx(float(flat.norm()), rel=1e-6)
    assert torch.equal(flat_gradient(model), flat)
    assert total_norm(deep_mlp(4, 3, depth=2, width=8)) == 0.0  # no backward yet


def test_norm_clipping_records_the_true_pre_clip_norm_and_keeps_the_direction():
    model = _model_with_gradient(scale=3.0)
    before = flat_gradient(model)
    max_norm = 0.1 * float(before.norm())
    clipper = clip_by_norm(max_norm)
    clipper(model, 0)
    after = flat_gradient(model)
    assert clipper.norms == [pytest.approx(float(before.norm()), rel=1e-6)]
    assert float(after.norm()) == pytest.approx(max_norm, rel=1e-4)
    assert float(after.norm()) <= max_norm * (1 + 1e-5)
    assert torch.allclose(after, before * (max_norm / float(before.norm())), rtol=1e-4, atol=1e-9)
    assert float(nn.functional.cosine_similarity(after, before, dim=0)) > 1 - 1e-6
    assert clipper.clipped_fraction() == 1.0


def test_norm_clipping_leaves_a_small_gradient_unchanged():
    model = _model_with_gradient()
    before = flat_gradient(model)
    clipper = clip_by_norm(10 * float(before.norm()))
    clipper(model, 0)
    assert torch.equal(flat_gradient(model), before)
    assert clipper.clipped_fraction() == 0.0


def test_value_clipping_bounds_every_entry_and_changes_the_direction():
    model = _model_with_gradient(scale=3.0)
    before = flat_gradient(model)
    value = float(before.abs().max()) / 10
    clipper = clip_by_value(value)
    clipper(model, 0)
    after = flat_gradient(model)
    assert clipper.norms == [pytest.approx(float(before.norm()), rel=1e-6)]
    assert float(after.abs().max()) <= float(torch.tensor(value, dtype=after.dtype))  # the float32 value clamp uses
    assert torch.equal(after, before.clamp(-value, value))
    assert float(nn.functional.cosine_similarity(after, before, dim=0)) < 0.999


@pytest.mark.parametrize("clipper", [clip_by_norm(1e-3), clip_by_value(1e-4)])
def test_clipping_never_increases_any_entry(clipper):
    model = _model_with_gradient(seed=1)
    before = flat_gradient(model)
    clipper(model, 0)
    after = flat_gradient(model)
    assert torch.all(after.abs() <= before.abs())
    assert torch.all(after * before >= 0)  # no sign flips


def test_record_only_changes_nothing():
    model = _model_with_gradient()
    before = flat_gradient(model)
    clipper = record_only()
    clipper(model, 0)
    assert torch.equal(flat_gradient(model), before)
    assert clipper.norms == [pytest.approx(float(before.norm()), rel=1e-6)]


def test_clipper_as_after_backward_records_every_step_and_bounds_the_update():
    data = spirals(n=200, seed=0)
    model = deep_mlp(2, 2, depth=3, width=16, activation="relu", init="he", weight_scale=2.0)
    lr, max_norm = 0.1, 0.5
    clipper = clip_by_norm(max_norm)
    steps = []

    def step_sizes(module, step):
        clipper(module, step)
        steps.append(total_norm(module))

    history = train(model, data, epochs=2, lr=lr, batch_size=50, progress=False, after_backward=step_sizes)
    assert len(clipper.norms) == len(history.step_loss) == 2 * 3
    assert all(n <= max_norm * (1 + 1e-5) for n in steps)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "1"])
def test_bad_thresholds_are_rejected_naming_the_value(bad):
    with pytest.raises(ValueError, match="max_norm must be a positive finite number.*" + repr(bad).replace("(", r"\(")):
        clip_by_norm(bad)
    with pytest.raises(ValueError, match="clip_value must be a positive finite number"):
        clip_by_value(bad)


def test_unknown_mode_and_missing_gradients_are_errors():
    with pytest.raises(ValueError, match="unknown clipping mode 'l1'; choose one of"):
        Clipper("l1", 1.0)
    with pytest.raises(ValueError, match="no gradients"):
        clip_by_norm(1.0)(deep_mlp(4, 3, depth=2, width=8), 0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        clip_by_norm(1.0)("model", 0)


def test_norm_clipping_is_bit_for_bit_torchs_clip_grad_norm() -> None:
    """The public get_total_norm + clip_grads_with_norm_ pair records the same number and leaves
    the same gradients as torch.nn.utils.clip_grad_norm_ (the one-call version)."""
    ours, theirs = deep_mlp(6, 3, depth=4, width=16, seed=0), deep_mlp(6, 3, depth=4, width=16, seed=0)
    x, y = torch.randn(32, 6, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 3
    for model in (ours, theirs):
        nn.functional.cross_entropy(model(x), y).backward()
    clipper = clip_by_norm(1e-3)
    clipper(ours)
    reference = torch.nn.utils.clip_grad_norm_(list(theirs.parameters()), 1e-3)
    assert clipper.norms == [float(reference)] and clipper.norms[0] > 1e-3  # it did clip
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a.grad, b.grad)
    assert record_only().norms == [] and total_norm(ours) == pytest.approx(1e-3, rel=1e-5)
