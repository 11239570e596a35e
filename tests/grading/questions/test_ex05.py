"""vgcourse.grading.questions.ex05 (the initialization fix): plausible wrong answers fail with a message that says
what is wrong, and right answers written another way pass."""

from __future__ import annotations

import math

import torch
from torch import nn
from fixtures.question_answers import SEEDS, failure

from vgcourse.grading import run_question


def test_init_std_wrong_answers():
    def scheme(xavier, he):
        return lambda s, fan_in, fan_out: xavier(fan_in, fan_out) if s == "xavier" else he(fan_in, fan_out)

    xavier = lambda i, o: math.sqrt(2 / (i + o))  # noqa: E731
    he = lambda i, o: math.sqrt(2 / i)  # noqa: E731
    wrong = {
        "variance": scheme(lambda i, o: 2 / (i + o), lambda i, o: 2 / i),
        "he with fan_out": scheme(xavier, lambda i, o: math.sqrt(2 / o)),
        "LeCun for xavier": scheme(lambda i, o: math.sqrt(1 / i), he),
        "xavier uniform bound": scheme(lambda i, o: math.sqrt(6 / (i + o)), he),
        "he without the ReLU gain": scheme(xavier, lambda i, o: math.sqrt(1 / i)),
    }
    for name, answer in wrong.items():
        assert "expected" in failure("ex05.init_std", answer), name


def _init(fill):
    """An ``init_linear_`` that fills the weight with ``fill(weight, std)`` and zeroes the bias."""
    def init_linear_(layer, scheme):
        fan_out, fan_in = layer.weight.shape
        std = math.sqrt(2 / (fan_in + fan_out)) if scheme == "xavier" else math.sqrt(2 / fan_in)
        with torch.no_grad():
            fill(layer.weight, std)
            if layer.bias is not None:
                layer.bias.zero_()
    return init_linear_


def test_init_linear_wrong_answers():
    qid = "ex05.init_linear"
    assert "standard deviation" in failure(qid, _init(lambda w, std: w.uniform_(-std, std)))   # bound = std
    assert "standard deviation" in failure(qid, _init(lambda w, std: w.normal_(0, std**2)))   # the variance
    assert "standard deviation" in failure(qid, _init(lambda w, std: w.normal_(0, std * 1.05)))

    def he_with_fan_out(layer, scheme):
        with torch.no_grad():
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu") if scheme == "he" \
                else nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                layer.bias.zero_()

    def swapped_shape(layer, scheme):  # takes weight.shape as (fan_in, fan_out)
        fan_in, fan_out = layer.weight.shape
        with torch.no_grad():
            layer.weight.normal_(0, math.sqrt(2 / (fan_in + fan_out)) if scheme == "xavier" else math.sqrt(2 / fan_in))
            if layer.bias is not None:
                layer.bias.zero_()

    assert "standard deviation" in failure(qid, he_with_fan_out)
    assert "standard deviation" in failure(qid, swapped_shape)
    assert "mean 0" in failure(qid, _init(lambda w, std: w.normal_(std, std)))
    assert "mean 0" in failure(qid, _init(lambda w, std: w.fill_(std)))               # a constant
    assert "standard deviation" in failure(qid, _init(lambda w, std: w.zero_()))
    assert "unchanged" in failure(qid, lambda layer, scheme: None)

    def keeps_bias(layer, scheme):
        std = math.sqrt(2 / sum(layer.weight.shape)) if scheme == "xavier" else math.sqrt(2 / layer.in_features)
        with torch.no_grad():
            layer.weight.normal_(0, std)

    def new_parameter(layer, scheme):
        std = math.sqrt(2 / sum(layer.weight.shape)) if scheme == "xavier" else math.sqrt(2 / layer.in_features)
        layer.weight = nn.Parameter(torch.randn(layer.weight.shape) * std)
        if layer.bias is not None:
            layer.bias = nn.Parameter(torch.zeros_like(layer.bias))

    def without_no_grad(layer, scheme):
        layer.weight.normal_(0, 0.05)

    def assumes_a_bias(layer, scheme):
        _init(lambda w, std: w.normal_(0, std))(layer, scheme)
        layer.bias.data.zero_()

    def stops_gradients(layer, scheme):
        _init(lambda w, std: w.normal_(0, std))(layer, scheme)
        layer.weight.requires_grad_(False)

    assert "bias should be all zeros" in failure(qid, keeps_bias)
    assert "in place" in failure(qid, new_parameter)
    assert "RuntimeError" in failure(qid, without_no_grad)
    assert "AttributeError" in failure(qid, assumes_a_bias)
    assert "require gradients" in failure(qid, stops_gradients)


def test_init_linear_accepts_torch_own_initializers_normal_or_uniform():
    def torch_init(xavier, kaiming):
        def init_linear_(layer, scheme):
            xavier(layer.weight) if scheme == "xavier" else kaiming(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        return init_linear_

    glorot_uniform = _init(lambda w, std: w.uniform_(-std * 3**0.5, std * 3**0.5))   # Glorot & Bengio's own
    for seed in SEEDS:
        assert run_question("ex05.init_linear", torch_init(nn.init.xavier_normal_, nn.init.kaiming_normal_), seed=seed).passed
        assert run_question("ex05.init_linear", torch_init(nn.init.xavier_uniform_, nn.init.kaiming_uniform_),
                            seed=seed).passed
        assert run_question("ex05.init_linear", glorot_uniform, seed=seed).passed


def _gain(variance, share=None):
    """A ``layer_gain`` from ``variance(init, n)`` and the activations' shares."""
    shares = share or {"tanh": 1.0, "relu": 0.5, "leaky_relu": (1 + 0.01**2) / 2}
    return lambda activation, init, width: width * variance(init, width) * shares[activation]


RIGHT_VARIANCE = {"default": lambda n: 1 / (3 * n), "xavier": lambda n: 2 / (n + n), "he": lambda n: 2 / n}


def test_layer_gain_wrong_answers():
    qid = "ex05.layer_gain"
    right = lambda init, n: RIGHT_VARIANCE[init](n)  # noqa: E731
    assert "within 25% of it" in failure(qid, _gain(right, {"tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0}))  # no 1/2
    assert "within 25% of it" in failure(qid, _gain(lambda init, n: 1 / n if init == "default" else right(init, n)))
    assert "within 25% of it" in failure(qid, _gain(lambda init, n: 2 / n if init == "xavier" else right(init, n)))
    assert "within 25% of it" in failure(qid, lambda activation, init, width: 1.0)     # "initialization keeps it 1"
    assert "within 25% of it" in failure(qid, lambda a, i, width: _gain(right)(a, i, width) / width)  # Var(w), not n·Var(w)
    assert "expected a positive number" in failure(qid, lambda activation, init, width: None)


def test_layer_gain_passes_and_shows_the_measurements():
    for seed in SEEDS:
        result = run_question("ex05.layer_gain", _gain(lambda init, n: RIGHT_VARIANCE[init](n)), seed=seed)
        assert result.passed, result.message
    assert result.message.count("forward") == 5 and "measured" in result.message
