"""vgcourse.grading.check: feedback in the learner's notebook, ``check()`` and ``run_question()``."""

import pytest
import torch

from vgcourse.grading import check, get_question, run_question


def sigmoid_derivative(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


def test_a_right_answer_passes_and_earns_the_points(capsys):
    check("ex01.sigmoid_derivative", sigmoid_derivative)
    assert capsys.readouterr().out.startswith("✓ ex01.sigmoid_derivative: passed")
    result = run_question("ex01.sigmoid_derivative", sigmoid_derivative)
    assert result.passed and result.points == result.max_points == 2


def test_check_finds_the_answer_by_name_in_the_callers_globals(capsys):
    check("ex01.sigmoid_derivative")  # sigmoid_derivative is a global of this module
    assert capsys.readouterr().out.startswith("✓")
    check("ex01.tanh_derivative")  # not defined here
    assert "`tanh_derivative` is not defined yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, expected_text",
    [
        (lambda x: torch.exp(-x) / (1 + torch.exp(-x)) ** 2, "got nan"),  # overflows at x = -1000
        (lambda x: torch.sigmoid(x), "values differ"),
        (lambda x: sigmoid_derivative(x).sum(), "expected shape"),
        (lambda x: "a string", "expected a tensor, got str"),
        (lambda x: object(), "cannot read"),
        (lambda x: 1 / 0, "ZeroDivisionError"),
        (lambda: 0.25, "TypeError"),
    ],
)
def test_wrong_answers_fail_with_a_reason_and_a_hint_and_never_raise(capsys, answer, expected_text):
    check("ex01.sigmoid_derivative", answer)
    out = capsys.readouterr().out
    assert out.startswith("✗ ex01.sigmoid_derivative") and expected_text in out and "Hint:" in out
    assert run_question("ex01.sigmoid_derivative", answer).points == 0


def test_an_unanswered_question_says_so_and_scores_zero(capsys):
    def input_for_derivative(d):
        raise NotImplementedError("ex01.input_for_derivative: replace this line with your answer")

    check("ex01.input_for_derivative", input_for_derivative)
    assert "not answered yet" in capsys.readouterr().out
    assert run_question("ex01.input_for_derivative", input_for_derivative).points == 0


def test_an_answer_hard_coded_from_one_run_fails_the_next():
    remembered = {}

    def memorised(d):  # passes the run it was recorded in, and no other
        return remembered.get(d, 0.0)

    cases = get_question("ex01.input_for_derivative").cases(torch.Generator().manual_seed(1))
    expected = get_question("ex01.input_for_derivative").expected
    remembered.update({case["d"]: expected(case) for case in cases})
    assert run_question("ex01.input_for_derivative", memorised, seed=1).passed
    assert not run_question("ex01.input_for_derivative", memorised, seed=2).passed


def test_unknown_question_ids_get_a_suggestion(capsys):
    check("ex01.sigmoid_derivativ", sigmoid_derivative)
    assert "did you mean 'ex01.sigmoid_derivative'" in capsys.readouterr().out
