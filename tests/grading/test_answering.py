"""vgcourse.grading.answering: what a Call is, and running an answer on cases into plain data."""

import pytest
import torch

from vgcourse.grading.answering import NOT_ANSWERED, Call, call_outputs


def double(answer, case):
    return answer(case["n"])


def test_a_call_holds_the_id_the_answer_name_and_how_to_run_it():
    call = Call(id="ex01.double", answer_name="double", run=double, answered_by=("vgcourse.models.deep_mlp",))
    assert (call.id, call.answer_name, call.answered_by) == ("ex01.double", "double", ("vgcourse.models.deep_mlp",))
    assert call.run(lambda n: 2 * n, {"n": 4}) == 8
    assert Call(id="ex10.fix", answer_name="fixed_setup", run=double).answered_by == ()


@pytest.mark.parametrize(("fields", "message"), [
    ({"id": "exercise1"}, "question id 'exercise1' must look like 'ex01.snake_name'"),
    ({"id": "ex1.double"}, "must look like"),
    ({"id": "ex01.Double"}, "must look like"),
    ({"answer_name": "not a name"}, "answer name of ex01.double must be a Python identifier"),
    ({"answered_by": "vgcourse.models.deep_mlp"}, "must be a tuple"),
    ({"answered_by": ("torch.sigmoid",)}, "must name course objects outside vgcourse.grading.*got 'torch.sigmoid'"),
    ({"answered_by": ("vgcourse",)}, "got 'vgcourse'"),
    ({"answered_by": ("vgcourse.models..deep_mlp",)}, "got 'vgcourse.models..deep_mlp'"),
    ({"answered_by": ("vgcourse.grading.check.check",)}, "outside vgcourse.grading"),
])
def test_a_call_is_validated(fields, message):
    with pytest.raises(ValueError, match=message):
        Call(**{"id": "ex01.double", "answer_name": "double", "run": double, **fields})


def test_outputs_record_results_not_answered_and_errors_without_raising():
    call = Call(id="ex01.double", answer_name="double", run=double)
    cases = [{"n": 1}, {"n": 5}]
    assert call_outputs(call, lambda n: 2 * n, cases) == [{"ok": 2}, {"ok": 10}]

    def stub(n):
        raise NotImplementedError("ex01.double: replace this line with your answer")

    assert call_outputs(call, stub, cases) == [{"error": NOT_ANSWERED}] * 2
    assert call_outputs(call, lambda n: 1 / (n - 1), cases)[0] == {"error": "ZeroDivisionError: division by zero"}
    assert call_outputs(call, lambda n: object(), cases)[0]["error"].startswith("TypeError: the answer returned a object")


def test_outputs_are_plain_data_and_each_case_is_a_copy():
    class Sneaky(torch.Tensor):
        pass

    call = Call(id="ex01.same", answer_name="same", run=lambda answer, case: answer(case["x"]))
    x = torch.ones(3, requires_grad=True)
    cases = [{"x": x}]
    (output,) = call_outputs(call, lambda t: ((2 * t).as_subclass(Sneaky), {1: t}), cases)
    first, mapping = output["ok"]
    assert type(first) is torch.Tensor and not first.requires_grad and torch.equal(first, 2 * torch.ones(3))
    assert list(mapping) == ["1"]
    call_outputs(call, lambda t: t.data.fill_(7.0), cases)
    assert torch.equal(x.detach(), torch.ones(3))  # the answer changed its copy, not the case
