"""Every solution notebook in solutions/, graded by `vgcourse grade`, earns full marks.

This runs each solution in its own fresh kernel exactly as an instructor's batch would; the
exercises (untouched) are graded in test_grading_course_exercises.py.
"""

from pathlib import Path

import pytest

from vgcourse.grading import ASSIGNMENTS, assignment_questions
from vgcourse.grading.batch import grade_submissions

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def grades():
    return {grade.assignment: grade for grade in grade_submissions(SOLUTIONS, cell_timeout=120, progress=False)}


def test_there_is_a_solution_for_every_exercise():
    assert [path.name[:2] for path in SOLUTIONS] == list(ASSIGNMENTS) == [f"{n:02d}" for n in range(1, 13)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_solution_scores_full_marks_with_only_its_imports_and_answer_cells_run(grades, assignment):
    grade = grades[assignment]
    assert grade.status == "ok", grade.error
    expected = sum(q.points for q in assignment_questions(assignment))
    assert grade.total == grade.max_points == expected, [r.message for r in grade.results if not r.passed]
