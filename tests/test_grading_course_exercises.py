"""Every exercise, untouched, runs top to bottom in the grader and scores 0.

The exercises are generated from solutions/ into a temporary folder, as `vgcourse release` would
write them, so a learner's answers in exercises/ don't affect this test; test_release.py checks
that the committed exercises/ are exactly these notebooks.
"""

from pathlib import Path

import nbformat
import pytest

from vgcourse.grading import ASSIGNMENTS
from vgcourse.grading.batch import grade_submissions
from vgcourse.tools.exercise import make_exercise

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exercises")
    for solution in SOLUTIONS:
        nbformat.write(make_exercise(nbformat.read(solution, as_version=4), str(solution)), folder / solution.name)
    paths = sorted(folder.glob("*.ipynb"))
    return {grade.assignment: grade for grade in grade_submissions(paths, cell_timeout=120, progress=False)}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_an_untouched_exercise_runs_without_errors_and_scores_zero(grades, assignment):
    grade = grades[assignment]
    assert grade.status == "not attempted", grade.error   # it ran cleanly, and nothing was answered
    assert grade.total == 0 and grade.max_points > 0
    for result in grade.results:
        assert "not answered yet" in result.message, result.message
