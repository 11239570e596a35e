"""Results cannot be forged (issue 14): a generic cell earns nothing on any blank exercise, and an
answer that calls a course function which answers the question by itself scores 0 and says why.

Both run on every exercise, graded as an instructor's batch would (sandboxed kernels)."""

from pathlib import Path

import nbformat
import pytest

from vgcourse.grading import ASSIGNMENTS, assignment_questions
from vgcourse.grading.batch import grade_submissions
from vgcourse.tools.exercise import make_exercise
from vgcourse.tools.notebook_format import cell_question

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.ipynb"))

# Earned 46 of the 52 points from the ten blank exercises against the grader before issue 14
# (its kernel imported the questions, references included, and called the answers itself).
GENERIC = """\
import vgcourse.grading.kernel as _kernel
from vgcourse.grading.registry import QUESTIONS as _QUESTIONS

for _question in _QUESTIONS.values():
    globals()[_question.answer_name] = None  # defined, so the grader calls it


def _reference_outputs(question, answer, cases):
    return [{"ok": question.expected(case)} for case in cases]


_kernel.call_outputs = _reference_outputs
"""


def _answer_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {cell_question(cell)[0]: cell for cell in nb.cells if cell_question(cell)}


def _blank_with_generic_cells(path: Path, folder: Path) -> Path:
    """The exercise as handed out, the generic cell appended and also put in its first answer cell."""
    nb = make_exercise(nbformat.read(path, as_version=4), path.name)
    first = next(iter(_answer_cells(nb).values()))
    first.source = GENERIC + "\n" + first.source
    nb.cells.append(nbformat.v4.new_code_cell(GENERIC))
    out = folder / "generic" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def _solution_calling_the_course(path: Path, folder: Path) -> Path | None:
    """The solution with every answer that a course object answers by itself replaced by that object."""
    nb = nbformat.read(path, as_version=4)
    cells = _answer_cells(nb)
    replaced = False
    for question in assignment_questions(path.name[:2]):
        if question.answer.answered_by:
            dotted = question.answer.answered_by[0]
            module, name = dotted.rsplit(".", 1)
            cells[question.id].source = f"from {module} import {name}\n{question.answer_name} = {name}\n"
            replaced = True
    if not replaced:
        return None
    out = folder / "course" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forgery")
    generic = [_blank_with_generic_cells(path, folder) for path in SOLUTIONS]
    course = [p for p in (_solution_calling_the_course(path, folder) for path in SOLUTIONS) if p is not None]
    graded = grade_submissions(generic + course, cell_timeout=120, progress=False, jobs=2)
    return ({g.assignment: g for g in graded[:len(generic)]}, {g.assignment: g for g in graded[len(generic):]})


def test_a_generic_cell_earns_nothing_on_any_blank_exercise(grades):
    generic, _ = grades
    assert sorted(generic) == list(ASSIGNMENTS)
    assert sum(g.max_points for g in generic.values()) == 74  # 01-12, as the registry and README state
    assert {a: g.total for a, g in generic.items()} == {a: 0 for a in ASSIGNMENTS}
    assert all(g.status != "grader error" for g in generic.values())


def test_an_answer_that_is_a_course_function_answering_it_scores_zero_and_says_why(grades):
    _, course = grades
    assert len(course) >= 5, sorted(course)  # most exercises have such a course function
    for assignment, grade in course.items():
        assert grade.status != "grader error", grade.error
        for question, result in zip(assignment_questions(assignment), grade.results):
            if question.answer.answered_by:
                assert result.points == 0 and "answers this question by itself" in result.message, result.message
            elif not any(q.answer.answered_by for q in assignment_questions(assignment)
                         if q.answer_name in _solution_source(assignment, question.id)):
                assert result.passed, result.message  # the refused objects get in no other answer's way


def _solution_source(assignment: str, question_id: str) -> str:
    """The solution's answer cell of ``question_id``: an answer that calls another answer the test
    replaced fails with it."""
    (path,) = [p for p in SOLUTIONS if p.name.startswith(assignment)]
    return _answer_cells(nbformat.read(path, as_version=4))[question_id].source
