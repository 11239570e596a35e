"""Graded questions of exercises 02-05: the solutions pass, plausible wrong answers fail with a
message that says what is wrong, unanswered questions say so, and the cases travel between
processes (``torch.save`` / ``torch.load(weights_only=True)``) and change from seed to seed."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vgcourse.grading import QUESTIONS, assignment_questions, run_question
from vgcourse.grading.question import call_outputs, score
from vgcourse.models import layer_names, linear_layers
from vgcourse.tools.exercise import make_exercise
from vgcourse.training import task_loss

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
NOTEBOOKS = {
    "02": "02_saturation_and_depth.ipynb",
    "03": "03_detection.ipynb",
    "04": "04_fix_relu.ipynb",
    "05": "05_fix_initialization.ipynb",
}
IDS = [qid for qid in QUESTIONS if qid[2:4] in NOTEBOOKS]
SEEDS = (0, 1, 2, 3, 4)


def _run_cells(nb: nbformat.NotebookNode) -> tuple[dict, str]:
    """Execute a notebook's code cells in one namespace; return it and everything printed."""
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, "<cell>", "exec"), namespace)
    return namespace, printed.getvalue()


@pytest.fixture(scope="module")
def solved() -> dict[str, dict]:
    """The namespace of each solution notebook after running it top to bottom."""
    namespaces = {}
    for assignment, name in NOTEBOOKS.items():
        namespace, printed = _run_cells(nbformat.read(SOLUTIONS / name, as_version=4))
        lines = [line for line in printed.splitlines() if line.startswith(("✓", "✗"))]
        assert len(lines) == len(assignment_questions(assignment)), printed
        assert all(line.startswith("✓") for line in lines), printed
        namespaces[assignment] = namespace
    return namespaces


def answer_of(solved: dict[str, dict], qid: str):
    return solved[qid[2:4]][QUESTIONS[qid].answer_name]


def failure(qid: str, answer, seeds=SEEDS) -> str:
    """The message of the first seed on which ``answer`` fails; the test fails if it never does."""
    for seed in seeds:
        result = run_question(qid, answer, seed=seed)
        if not result.passed:
            assert result.points == 0 and result.message.startswith(f"✗ {qid}:")
            return result.message
    pytest.fail(f"the wrong answer passed {qid} on seeds {seeds}")


# ---- every question ----------------------------------------------------------------------------


def test_the_questions_of_02_to_05_are_registered_with_their_points():
    points = {qid: QUESTIONS[qid].points for qid in IDS}
    assert points == {
        "ex02.depth_bound": 2, "ex02.layers_to_vanish": 2, "ex02.saturated_fraction": 2,
        "ex03.hook": 3, "ex03.stalled": 2,
        "ex04.leaky_relu_derivative": 2, "ex04.dead_fraction": 2,
        "ex05.init_std": 2, "ex05.init_linear": 2,
    }


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_answer_cells_match_the_questions(assignment):
    nb = nbformat.read(SOLUTIONS / NOTEBOOKS[assignment], as_version=4)
    graded = [cell for cell in nb.cells if "vgcourse" in cell.metadata]
    meta = [(cell.metadata["vgcourse"]["question"], cell.metadata["vgcourse"]["points"]) for cell in graded]
    assert meta == [(q.id, q.points) for q in assignment_questions(assignment)]
    for cell, question in zip(graded, assignment_questions(assignment)):
        assert f"def {question.answer_name}(" in cell.source.split("### BEGIN SOLUTION")[0]
    checks = [cell.source for cell in nb.cells if cell.cell_type == "code" and "check(" in cell.source]
    assert checks == [f'check("{q.id}", {q.answer_name})' for q in assignment_questions(assignment)]


@pytest.mark.parametrize("qid", IDS)
def test_solution_passes_on_several_seeds(solved, qid):
    for seed in SEEDS:
        result = run_question(qid, answer_of(solved, qid), seed=seed)
        assert result.passed, result.message


@pytest.mark.parametrize("qid", IDS)
def test_unanswered_question_says_so_and_scores_zero(qid):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"{qid}: replace this line with your answer")

    result = run_question(qid, stub, seed=0)
    assert result.points == 0 and "not answered yet" in result.message


@pytest.mark.parametrize("qid", IDS)
def test_an_answer_that_raises_is_reported_not_raised(qid):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    result = run_question(qid, broken, seed=0)
    assert result.points == 0 and "KeyError" in result.message and "on " in result.message


@pytest.mark.parametrize("qid", IDS)
def test_cases_survive_weights_only_round_trip_and_change_with_the_seed(solved, qid, tmp_path):
    question = QUESTIONS[qid]
    cases = question.cases(torch.Generator().manual_seed(0))
    torch.save(cases, tmp_path / "cases.pt")
    loaded = torch.load(tmp_path / "cases.pt", weights_only=True)
    assert _same(loaded, cases)
    # The batch grader's path: outputs computed in the kernel, saved, loaded and scored elsewhere.
    torch.save(call_outputs(question, answer_of(solved, qid), loaded), tmp_path / "outputs.pt")
    outputs = torch.load(tmp_path / "outputs.pt", weights_only=True)
    assert score(question, cases, outputs).passed
    assert not _same(cases, question.cases(torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("qid", [qid for qid in IDS if qid != "ex05.init_linear"])  # returns nothing
def test_an_answer_hard_coded_from_one_run_fails_the_next(solved, qid):
    question = QUESTIONS[qid]
    cases = question.cases(torch.Generator().manual_seed(0))
    remembered = call_outputs(question, answer_of(solved, qid), cases)[0]["ok"]
    if qid == "ex03.hook":
        remembered = remembered["norms"]
    assert "✗" in failure(qid, lambda *args, **kwargs: remembered, seeds=(1, 2, 3))


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype \
            and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def test_the_untouched_exercises_run_top_to_bottom_and_report_not_answered():
    for assignment, name in NOTEBOOKS.items():
        exercise = make_exercise(nbformat.read(SOLUTIONS / name, as_version=4), name)
        _, printed = _run_cells(exercise)
        lines = [line for line in printed.splitlines() if line.startswith(("✓", "✗"))]
        assert len(lines) == len(assignment_questions(assignment)), printed
        assert all("not answered yet" in line for line in lines), printed


# ---- ex02 --------------------------------------------------------------------------------------

SUP = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}


def test_depth_bound_wrong_answers():
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: (SUP[a] * w) ** (d - 1))  # off by one
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: w**d)                    # sup f' = 1
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: SUP[a] ** d)             # no weights
    assert "expected" in failure("ex02.depth_bound", lambda a, d, w: SUP[a] * w**d)           # one factor
    assert "KeyError" in failure("ex02.depth_bound", lambda a, d, w: ({"sigmoid": 0.25, "tanh": 1.0}[a] * w) ** d)
    assert "expected a number, got str" in failure("ex02.depth_bound", lambda a, d, w: str((SUP[a] * w) ** d))


def test_layers_to_vanish_alternative_right_answer_passes():
    def multiply(activation, weight_norm, threshold):
        depth, bound = 1, SUP[activation] * weight_norm
        while bound >= threshold:
            depth, bound = depth + 1, bound * SUP[activation] * weight_norm
        return depth

    for seed in SEEDS:
        assert run_question("ex02.layers_to_vanish", multiply, seed=seed).passed


def test_layers_to_vanish_wrong_answers():
    def ratio(a, w, t):
        return math.log(t) / math.log(SUP[a] * w)

    message = failure("ex02.layers_to_vanish", lambda a, w, t: math.ceil(ratio(a, w, t)))
    assert "expected" in message and "threshold" in message
    assert "expected" in failure("ex02.layers_to_vanish", lambda a, w, t: math.floor(ratio(a, w, t)) + 1)
    assert "expected" in failure("ex02.layers_to_vanish", lambda a, w, t: math.floor(ratio(a, w, t)))  # one short

    def not_strict(a, w, t):  # stops when the bound reaches the threshold, not when it drops below
        depth = 1
        while (SUP[a] * w) ** depth > t:
            depth += 1
        return depth

    assert "expected" in failure("ex02.layers_to_vanish", not_strict)
    assert "return an int" in failure("ex02.layers_to_vanish", lambda a, w, t: float(math.floor(ratio(a, w, t)) + 1))


def test_saturated_fraction_wrong_answers():
    def sigmoid_rule_for_both(a, out, margin=0.05):
        return float(((out < margin) | (out > 1 - margin)).float().mean())

    def not_strict(a, out, margin=0.05):
        mask = ((out <= margin) | (out >= 1 - margin)) if a == "sigmoid" else out.abs() >= 1 - margin
        return float(mask.float().mean())

    def upper_only(a, out, margin=0.05):
        return float((out > 1 - margin).float().mean()) if a == "tanh" else sigmoid_rule_for_both(a, out, margin)

    def fixed_margin(a, out, margin=0.05):
        return sigmoid_rule_for_both(a, out) if a == "sigmoid" else float((out.abs() > 0.95).float().mean())

    def counts(a, out, margin=0.05):
        mask = ((out < margin) | (out > 1 - margin)) if a == "sigmoid" else out.abs() > 1 - margin
        return float(mask.sum())

    def wrong_default(a, out, margin=0.1):
        mask = ((out < margin) | (out > 1 - margin)) if a == "sigmoid" else out.abs() > 1 - margin
        return float(mask.float().mean())

    for wrong in (sigmoid_rule_for_both, not_strict, upper_only, fixed_margin, counts, wrong_default):
        assert "expected" in failure("ex02.saturated_fraction", wrong), wrong.__name__


def test_saturated_fraction_distance_formulation_passes():
    def distance(a, out, margin=0.05):
        gap = torch.minimum(out, 1 - out) if a == "sigmoid" else 1 - out.abs()
        return (gap < margin).double().mean().item()

    for seed in SEEDS:
        assert run_question("ex02.saturated_fraction", distance, seed=seed).passed


# ---- ex03 --------------------------------------------------------------------------------------


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


# ---- ex04 --------------------------------------------------------------------------------------


def test_leaky_relu_derivative_wrong_answers():
    def one_at_zero(x, slope):
        return torch.where(x >= 0, torch.ones_like(x), torch.full_like(x, slope))

    assert "wrong only at x = 0" in failure("ex04.leaky_relu_derivative", one_at_zero)
    assert "values differ" in failure("ex04.leaky_relu_derivative",
                                      lambda x, slope: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01)))
    assert "values differ" in failure("ex04.leaky_relu_derivative", lambda x, slope: (x > 0).to(x.dtype))
    assert "values differ" in failure("ex04.leaky_relu_derivative", lambda x, slope: F.leaky_relu(x, slope))
    assert "expected shape" in failure("ex04.leaky_relu_derivative",
                                       lambda x, slope: torch.where(x > 0, 1.0, slope).flatten()[:-1])
    assert "expected a tensor" in failure("ex04.leaky_relu_derivative", lambda x, slope: slope)


def test_leaky_relu_derivative_by_autograd_passes():
    def by_autograd(x, slope):
        x = x.detach().clone().requires_grad_()
        F.leaky_relu(x, slope).sum().backward()
        return x.grad

    for seed in SEEDS:
        assert run_question("ex04.leaky_relu_derivative", by_autograd, seed=seed).passed


def test_dead_fraction_wrong_answers():
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).float().mean()))       # entries
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(1).float().mean()))  # examples
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out < 1e-6).all(0).float().mean()))
    assert "expected" in failure("ex04.dead_fraction", lambda out: float((out == 0).all(0).sum()))          # a count
    by_sums = lambda out: (out.sum(0) == 0).double().mean().item()  # noqa: E731  (outputs are >= 0)
    for seed in SEEDS:
        assert run_question("ex04.dead_fraction", by_sums, seed=seed).passed


# ---- ex05 --------------------------------------------------------------------------------------


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
    assert "normal distribution" in failure(qid, _init(lambda w, std: w.uniform_(-std * 3**0.5, std * 3**0.5)))
    assert "normal distribution" in failure(qid, lambda layer, s: (nn.init.xavier_uniform_(layer.weight),
                                                                    nn.init.zeros_(layer.bias)))
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


def test_init_linear_accepts_torch_own_initializers():
    def torch_init(layer, scheme):
        if scheme == "xavier":
            nn.init.xavier_normal_(layer.weight)
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    for seed in SEEDS:
        assert run_question("ex05.init_linear", torch_init, seed=seed).passed
