"""Every exercise in exercises/, untouched, runs top to bottom in the grader and scores 0."""

from pathlib import Path

import pytest

from vgcourse.grading import ASSIGNMENTS
from vgcourse.grading.batch import grade_submissions

EXERCISES = sorted((Path(__file__).resolve().parents[1] / "exercises").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def grades():
    return {grade.assignment: grade for grade in grade_submissions(EXERCISES, cell_timeout=120, progress=False)}


def test_there_is_an_exercise_for_every_assignment():
    assert [path.name[:2] for path in EXERCISES] == list(ASSIGNMENTS)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_an_untouched_exercise_runs_without_errors_and_scores_zero(grades, assignment):
    grade = grades[assignment]
    assert grade.status == "ok", grade.error
    assert grade.total == 0 and grade.max_points > 0
    for result in grade.results:
        assert "not answered yet" in result.message, result.message
