"""The grading core: questions, scoring, check(), the kernel side, and the solutions' metadata."""

import re
from pathlib import Path

import nbformat
import pytest
import torch

from vgcourse.grading import ASSIGNMENTS, QUESTIONS, assignment_questions, check, get_question, run_question
from vgcourse.grading.kernel import answer_cases
from vgcourse.grading.question import score

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


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
    with pytest.raises(ValueError, match="unknown question"):
        get_question("ex99.nothing")
    with pytest.raises(ValueError, match="unknown exercise '99'"):
        assignment_questions("99")


def test_the_kernel_side_saves_outputs_or_reports_a_missing_answer(tmp_path):
    question = get_question("ex01.sigmoid_derivative")
    cases = question.cases(torch.Generator().manual_seed(3))
    torch.save(cases, tmp_path / "cases.pt")
    answer_cases(question.id, {"sigmoid_derivative": sigmoid_derivative}, str(tmp_path / "cases.pt"), str(tmp_path / "out.pt"))
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    assert score(question, cases, saved["outputs"]).passed
    answer_cases(question.id, {}, str(tmp_path / "cases.pt"), str(tmp_path / "out.pt"))
    assert torch.load(tmp_path / "out.pt", weights_only=True) == {"missing": "sigmoid_derivative"}


def test_every_question_draws_serializable_cases_that_change_with_the_seed(tmp_path):
    for question in QUESTIONS.values():
        first = question.cases(torch.Generator().manual_seed(0))
        torch.save(first, tmp_path / "cases.pt")
        loaded = torch.load(tmp_path / "cases.pt", weights_only=True)
        assert len(loaded) == len(first) > 0, question.id
        second = question.cases(torch.Generator().manual_seed(1))
        assert repr(first) != repr(second), f"{question.id}: cases do not depend on the seed"


# ---- the solution notebooks and the registry agree ---------------------------------------------


def _answer_cells(path):
    nb = nbformat.read(path, as_version=4)
    return nb, [(c.metadata["vgcourse"]["question"], c.metadata["vgcourse"]["points"], c.source)
                for c in nb.cells if "question" in c.metadata.get("vgcourse", {})]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_each_solution_holds_exactly_its_exercises_questions_with_the_registrys_points(path):
    nb, cells = _answer_cells(path)
    assignment = path.name[:2]
    assert nb.metadata["vgcourse"]["assignment"] == assignment
    assert (REPO / "notebooks" / path.name).exists(), "a solution is named after its content notebook"
    registry = {q.id: q.points for q in assignment_questions(assignment)}
    assert {qid: points for qid, points, _ in cells} == registry
    assert len(cells) == len(registry), "one answer cell per question"
    assert 2 <= len(registry) <= 4
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for qid, _, source in cells:
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, qid
        assert re.search(rf"check\(\"{re.escape(qid)}\"", code), f"no check cell for {qid}"


def test_every_exercise_with_questions_has_a_solution_notebook():
    assert {p.name[:2] for p in SOLUTIONS} == set(ASSIGNMENTS)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_the_points_stated_in_the_prose_are_the_registrys(path):
    questions = assignment_questions(path.name[:2])
    markdown = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    assert re.search(rf"\*\*{sum(q.points for q in questions)} points\*\*", markdown[0]), "total in the title cell"
    headings = [int(n) for text in markdown[1:] for n in re.findall(r"^##.*\((\d+) points?\)", text, re.M)]
    assert headings == [q.points for q in questions]
    notebook = nbformat.read(REPO / "notebooks" / path.name, as_version=4)
    practice = [c.source for c in notebook.cells if "**Practice:**" in c.source]
    assert len(practice) == 1, "the content notebook links its exercise once"
    assert f"({sum(q.points for q in questions)} points," in practice[0]
    assert f"../exercises/{path.name}" in practice[0] and f"../solutions/{path.name}" in practice[0]
