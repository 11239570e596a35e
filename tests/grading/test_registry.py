"""vgcourse.grading.registry: every question by id and exercise, and that the solution notebooks
hold exactly the registry's questions with its points."""

import re
from pathlib import Path

import nbformat
import pytest
import torch

from vgcourse.grading import ASSIGNMENTS, QUESTIONS, assignment_questions, get_question

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_unknown_ids_and_exercises_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown question 'ex99.nothing'"):
        get_question("ex99.nothing")
    with pytest.raises(ValueError, match="did you mean 'ex01.sigmoid_derivative'"):
        get_question("ex01.sigmoid_derivativ")
    with pytest.raises(ValueError, match=r"unknown exercise '99'; choose one of \['01', "):
        assignment_questions("99")
    assert [q.id for q in assignment_questions("01")] == [qid for qid in QUESTIONS if qid.startswith("ex01.")]


def test_every_question_draws_serializable_cases_that_change_with_the_seed(tmp_path):
    for question in QUESTIONS.values():
        first = question.cases(torch.Generator().manual_seed(0))
        torch.save(first, tmp_path / "cases.pt")
        loaded = torch.load(tmp_path / "cases.pt", weights_only=True)
        assert len(loaded) == len(first) > 0, question.id
        second = question.cases(torch.Generator().manual_seed(1))
        assert repr(first) != repr(second), f"{question.id}: cases do not depend on the seed"


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
