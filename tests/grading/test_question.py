"""vgcourse.grading.question: what a question is, how an answer's outputs are scored, comparisons."""

import pytest
import torch

from vgcourse.grading import get_question
from vgcourse.grading.answering import Call, call_outputs
from vgcourse.grading.question import (
    MAX_NOTE, Passed, Question, Result, close_numbers, close_tensors, equal_values, positive_number, score,
)


def sigmoid_derivative(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


def doubling(compare):
    """A two-case question, ``2 * n``, judged by ``compare``."""
    return Question(answer=Call("ex01.double", "double", lambda answer, case: answer(case["n"])), points=3,
                    task="return 2 * n", hint="n + n", cases=lambda generator: [{"n": 1}, {"n": 5}],
                    expected=lambda case: 2 * case["n"], compare=compare)


def test_a_note_returned_by_compare_is_shown_under_the_pass_line_and_nothing_is_printed(capsys):
    def compare(got, want, case):
        problem = equal_values(got, want)
        return problem if problem else Passed(f"measured {got}")

    question = doubling(compare)
    cases = question.cases(None)
    result = score(question, cases, call_outputs(question.answer, lambda n: 2 * n, cases))
    assert result.passed and result.points == 3
    assert result.message == ("✓ ex01.double: passed 2 randomized tests (3/3 points)\n"
                              "  ex01.double: measured 2\n  ex01.double: measured 10")
    assert capsys.readouterr().out == ""
    wrong = score(question, cases, call_outputs(question.answer, lambda n: 2 * n + (n == 5), cases))
    assert not wrong.passed and "measured" not in wrong.message and "expected 10, got 11" in wrong.message


def test_a_long_note_is_cut(capsys):
    question = doubling(lambda got, want, case: Passed("z" * 10 * MAX_NOTE))
    cases = question.cases(None)
    message = score(question, cases, call_outputs(question.answer, lambda n: 2 * n, cases)).message
    assert len(message) < 3 * MAX_NOTE and message.split("\n", 1)[1].count("z") == 2 * (MAX_NOTE - len("\n  ex01.double: "))


@pytest.mark.parametrize(
    "outputs", [None, "junk", [], [{"ok": 1.0}] * 99, [{"ok": 1, "error": "x"}], [{"maybe": 1}], [[1.0]]]
)
def test_score_does_not_trust_the_shape_of_outputs(outputs):
    question = get_question("ex01.input_for_derivative")
    cases = question.cases(torch.Generator().manual_seed(0))
    result = score(question, cases, outputs)
    assert isinstance(result, Result) and result.points == 0


def test_question_ids_and_points_are_validated():
    args = dict(task="t", hint="h", cases=list, expected=None, compare=None)
    with pytest.raises(ValueError, match="must look like"):
        Call("exercise1", "f", None)
    with pytest.raises(ValueError, match="positive integer"):
        Question(answer=Call("ex01.f", "f", None), points=0, **args)
    with pytest.raises(ValueError, match="positive integer, got True"):
        Question(answer=Call("ex01.f", "f", None), points=True, **args)
    with pytest.raises(TypeError, match="must be a Call"):
        Question(answer="ex01.f", points=1, **args)


def test_comparisons_explain_the_difference():
    assert close_tensors(torch.ones(3), torch.ones(3)) is None
    assert "expected shape (3,)" in close_tensors(torch.ones(2), torch.ones(3))
    assert "expected a tensor" in close_tensors([1.0], torch.ones(1))
    assert "at flat index 1" in close_tensors(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    assert close_numbers(torch.tensor(2.0), 2.0) is None
    assert "expected 2" in close_numbers(2.5, 2.0)
    assert "expected a number" in close_numbers(True, 1.0)


def test_outputs_are_plain_data_that_load_with_weights_only(tmp_path):
    class Sneaky(torch.Tensor):
        pass

    question = get_question("ex01.sigmoid_derivative")
    cases = question.cases(torch.Generator().manual_seed(0))
    outputs = call_outputs(question.answer, lambda x: sigmoid_derivative(x).as_subclass(Sneaky), cases)
    torch.save(outputs, tmp_path / "out.pt")
    loaded = torch.load(tmp_path / "out.pt", weights_only=True)
    assert type(loaded[0]["ok"]) is torch.Tensor
    assert score(question, cases, loaded).passed


def test_positive_number_accepts_positive_finite_numbers_and_one_element_tensors_and_says_what_was_wanted():
    assert positive_number(3, "the gain") == 3.0 and isinstance(positive_number(3, "the gain"), float)
    assert positive_number(torch.tensor([0.5]), "the gain") == 0.5
    for bad in (0, -1.0, float("inf"), float("nan"), "2", None, torch.ones(2), True):
        message = positive_number(bad, "the gain")
        assert isinstance(message, str) and message.startswith("expected a positive number (the gain), got "), bad
