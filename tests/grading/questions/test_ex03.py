"""vgcourse.grading.questions.ex03 (detection): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from fixtures.question_answers import SEEDS, answer_of, failure

from vgcourse.grading import run_question
from vgcourse.models import layer_names, linear_layers
from vgcourse.training import task_loss


def _weights(model):
    return list(zip(layer_names(model), [layer.weight for layer in linear_layers(model)]))


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_hook_alternatives_that_are_right_pass():
    def with_autograd_grad(model, x, y):  # no hooks at all: cannot be told apart, and leaves .grad alone
        names, weights = zip(*_weights(model))
        grads = torch.autograd.grad(task_loss(model(x), y), list(weights))
        return {name: float(g.norm()) for name, g in zip(names, grads)}

    def module_hooks(model, x, y):  # forward hook keeps the input, backward hook gives ∂L/∂z
        inputs, norms, handles = {}, {}, []
        for name, layer in zip(layer_names(model), linear_layers(model)):
            handles.append(layer.register_forward_hook(lambda m, i, o, n=name: inputs.__setitem__(n, i[0])))
            handles.append(layer.register_full_backward_hook(
                lambda m, gi, go, n=name: norms.__setitem__(n, float((go[0].T @ inputs[n]).norm()))))
        try:
            task_loss(model(x), y).backward()
        finally:
            for handle in handles:
                handle.remove()
        return norms

    for answer in (with_autograd_grad, module_hooks):
        for seed in SEEDS[:3]:
            result = run_question("ex03.hook", answer, seed=seed)
            assert result.passed, (answer.__name__, result.message)


def test_hook_wrong_answers(solved):
    right = answer_of(solved, "ex03.hook")

    def reads_grad(model, x, y):  # .grad may already hold an earlier pass's gradient
        task_loss(model(x), y).backward()
        return {name: float(w.grad.norm()) for name, w in _weights(model)}

    def zeroes_grad(model, x, y):  # right norms, but throws away the caller's accumulated gradients
        model.zero_grad()
        return reads_grad(model, x, y)

    def keeps_hooks(model, x, y):
        norms = {}
        for name, w in _weights(model):
            w.register_hook(lambda g, n=name: norms.__setitem__(n, float(g.norm())))
        task_loss(model(x), y).backward()
        return norms

    global_handles = []

    def leaves_a_global_hook(model, x, y):
        global_handles.append(nn.modules.module.register_module_forward_hook(lambda m, i, o: None))
        return right(model, x, y)

    def module_names(model, x, y):  # "layer1.linear" instead of "layer 1"
        norms = right(model, x, y)
        qualified = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        return {name: norms[label] for label, name in zip(layer_names(model), qualified)}

    def late_binding(model, x, y):
        norms, handles = {}, []
        for name, w in _weights(model):
            handles.append(w.register_hook(lambda g: norms.__setitem__(name, float(g.norm()))))
        task_loss(model(x), y).backward()
        for handle in handles:
            handle.remove()
        return norms

    def always_cross_entropy(model, x, y):
        norms, handles = {}, []
        for name, w in _weights(model):
            handles.append(w.register_hook(lambda g, n=name: norms.__setitem__(n, float(g.norm()))))
        F.cross_entropy(model(x), y).backward()
        for handle in handles:
            handle.remove()
        return norms

    def after_accumulation(model, x, y):  # post-accumulate hooks see .grad = old + new
        norms, handles = {}, []
        for name, w in _weights(model):
            handles.append(w.register_post_accumulate_grad_hook(
                lambda p, n=name: norms.__setitem__(n, float(p.grad.norm()))))
        task_loss(model(x), y).backward()
        for handle in handles:
            handle.remove()
        return norms

    def squared(model, x, y):
        return {name: value**2 for name, value in right(model, x, y).items()}

    def as_list(model, x, y):
        return list(right(model, x, y).values())

    assert "gradient norm of" in failure("ex03.hook", reads_grad)
    assert "must be kept" in failure("ex03.hook", zeroes_grad)
    assert "hook(s) still registered" in failure("ex03.hook", keeps_hooks)
    try:
        assert "hook(s) still registered" in failure("ex03.hook", leaves_a_global_hook)
    finally:
        for handle in global_handles:
            handle.remove()
    assert "keys" in failure("ex03.hook", module_names)
    assert "keys" in failure("ex03.hook", late_binding)
    assert "gradient norm of" in failure("ex03.hook", always_cross_entropy)
    assert "gradient norm of" in failure("ex03.hook", after_accumulation)
    assert "gradient norm of" in failure("ex03.hook", squared)
    assert "must return a dict" in failure("ex03.hook", as_list)


def test_stalled_wrong_answers():
    def make(improvement, short=lambda n, k: n < k + 1, best=min, include_equal=False):
        def loss_stalled(losses, window, rho):
            if short(len(losses), window):
                return False
            b, r = best(losses[:-window]), best(losses[-window:])
            gain = improvement(b, r)
            return gain <= rho * b if include_equal else gain < rho * b
        return loss_stalled

    relative = lambda b, r: b - r  # noqa: E731
    right = make(relative)
    for seed in SEEDS:
        assert run_question("ex03.stalled", right, seed=seed).passed

    assert "expected" in failure("ex03.stalled", make(relative, include_equal=True))           # <= at the boundary
    assert "expected" in failure("ex03.stalled", make(lambda b, r: abs(b - r)))               # worse counts as progress
    assert "expected" in failure("ex03.stalled", make(relative, best=lambda v: sum(v) / len(v)))  # mean, not best

    def last_value(losses, window, rho):
        return len(losses) > window and min(losses[:-window]) - losses[-1] < rho * min(losses[:-window])

    def absolute(losses, window, rho):
        return len(losses) > window and min(losses[:-window]) - min(losses[-window:]) < rho

    def too_short_off_by_one(losses, window, rho):
        return len(losses) >= window and min(losses[:-window]) - min(losses[-window:]) < rho * min(losses[:-window])

    assert "expected" in failure("ex03.stalled", last_value)
    assert "expected" in failure("ex03.stalled", absolute)
    assert "ValueError" in failure("ex03.stalled", too_short_off_by_one)  # min() of an empty list
    assert "Python bool" in failure("ex03.stalled", lambda losses, k, rho: torch.tensor(right(losses, k, rho)))


READINGS = {"sigmoid": -7, "ReLU": -2, "sigmoid + batch norm": 0, "tanh, Xavier × 8": 3}


def test_readings_within_half_a_power_of_ten_pass_and_others_fail():
    for seed in SEEDS:
        assert run_question("ex03.read_the_plot", lambda n: READINGS[n] + 0.2, seed=seed).passed
        assert run_question("ex03.read_the_plot", lambda n: float(READINGS[n]) - 0.25, seed=seed).passed
    assert "too low" in failure("ex03.read_the_plot", lambda n: {**READINGS, "ReLU": -3}[n])
    assert "too high" in failure("ex03.read_the_plot", lambda n: -READINGS[n] if n == "sigmoid" else READINGS[n])  # sign
    assert "too low" in failure("ex03.read_the_plot", lambda n: -abs(READINGS[n]))  # the exploding net read as vanishing
    assert "expected a number" in failure("ex03.read_the_plot", lambda n: "about -7")


def test_the_reading_reference_is_measured_on_the_figure_networks():
    import math

    from vgcourse.data import digits
    from vgcourse.experiments import BASELINE, build_model
    from vgcourse.grading import get_question
    from vgcourse.probes.layers import layer_gradient_norms

    data = digits(seed=0)
    norms = layer_gradient_norms(build_model(BASELINE, data), data.x_train[:256], data.y_train[:256])
    question = get_question("ex03.read_the_plot")
    assert question.expected({"network": "sigmoid"}) == pytest.approx(math.log10(norms[0] / norms[-1]))
    measured = {label: question.expected({"network": label}) for label in READINGS}
    assert measured["sigmoid"] < -6 and measured["tanh, Xavier × 8"] > 2  # vanishing, exploding
    assert all(abs(measured[label] - READINGS[label]) < 0.4 for label in READINGS)  # readable to the nearest power


def test_reading_network_rejects_an_unknown_label():
    from vgcourse.grading.calls.ex03 import reading_network

    with pytest.raises(ValueError, match="unknown network 'tanh'; choose one of"):
        reading_network("tanh")
