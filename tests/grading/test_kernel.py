"""vgcourse.grading.kernel: the part of grading that runs in a submission's kernel."""

import torch

from vgcourse.grading import get_question
from vgcourse.grading.kernel import answer_cases
from vgcourse.grading.question import score


def sigmoid_derivative(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


def test_the_kernel_side_saves_outputs_or_reports_a_missing_answer(tmp_path):
    question = get_question("ex01.sigmoid_derivative")
    cases = question.cases(torch.Generator().manual_seed(3))
    torch.save(cases, tmp_path / "cases.pt")
    answer_cases(question.id, {"sigmoid_derivative": sigmoid_derivative}, str(tmp_path / "cases.pt"), str(tmp_path / "out.pt"))
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    assert score(question, cases, saved["outputs"]).passed
    answer_cases(question.id, {}, str(tmp_path / "cases.pt"), str(tmp_path / "out.pt"))
    assert torch.load(tmp_path / "out.pt", weights_only=True) == {"missing": "sigmoid_derivative"}
