"""vgcourse.grading.statistics: per-question statistics, their figure, and the LMS grade book."""

import csv
from pathlib import Path

import pytest

from vgcourse.grading.grade import SubmissionGrade
from vgcourse.grading.report import write_scores
from vgcourse.grading.question import Result
from vgcourse.grading.statistics import (
    question_statistics, statistics_figure, write_gradebook, write_question_statistics,
)

A, B = "ex01.sigmoid_derivative", "ex01.tanh_derivative"


def _grade(student: str, a: int, b: int, why_b: str = "✗ ex01.tanh_derivative: values differ at x=0") -> SubmissionGrade:
    return SubmissionGrade(student, "01", Path(f"{student}.ipynb"), results=[
        Result(A, a, 2, "✓" if a == 2 else "✗ ex01.sigmoid_derivative: not answered yet — replace it"),
        Result(B, b, 2, "✓" if b == 2 else why_b)])


GRADES = [_grade("ann", 2, 2), _grade("ben", 2, 0), _grade("cat", 0, 0), _grade("=dan", 2, 1, "✗ ex01.tanh_derivative: wrong shape")]


def test_statistics_per_question_in_course_order():
    first, second = question_statistics(GRADES)
    assert (first.question_id, first.graded, first.max_points) == (A, 4, 2)
    assert first.mean_points == pytest.approx(1.5) and first.full_marks == pytest.approx(0.75)
    assert (first.common_failure, first.common_failure_count) == ("not answered yet — replace it", 1)
    assert second.mean_points == pytest.approx(0.75) and second.full_marks == pytest.approx(0.25)
    assert (second.common_failure, second.common_failure_count) == ("values differ at x=0", 2)


def test_statistics_csv_and_figure(tmp_path):
    stats = question_statistics(GRADES)
    path = write_question_statistics(stats, tmp_path / "q.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["question"], r["mean"], r["full_marks"], r["count"]) for r in rows] == [
        (A, "1.50", "0.75", "1"), (B, "0.75", "0.25", "2")]
    with pytest.raises(FileExistsError, match="already exists"):
        write_question_statistics(stats, path)
    fig = statistics_figure(stats)
    (ax,) = fig.axes
    heights = [round(bar.get_height(), 3) for bar in ax.patches]
    assert heights == [0.75, 0.375, 0.75, 0.25]          # mean share, then full-marks share, per question
    assert [t.get_text() for t in ax.get_xticklabels()] == [A, B] and ax.get_ylim() == (0, 1)
    with pytest.raises(ValueError, match="nothing was graded"):
        statistics_figure([])


def test_gradebook_has_an_identifier_and_a_percentage_for_the_whole_csv(tmp_path):
    scores = write_scores(GRADES, tmp_path / "scores.csv")
    write_scores([_grade("ben", 2, 2)], scores, overwrite=True)      # ben re-graded: the rest stay
    book = write_gradebook(scores, tmp_path / "book.csv")
    with book.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows == [["identifier", "percentage"], ["ann", "100.0"], ["ben", "100.0"], ["cat", "0.0"], ["'=dan", "75.0"]]


def test_the_common_failure_carries_no_escape_sequences(tmp_path):
    """It is printed to the instructor's terminal and written to the CSV."""
    why = "✗ ex01.tanh_derivative: ValueError: \x1b]0;pwned\x07\x1b[2Jboom\r" + "x" * 1_000_000
    stats = question_statistics([_grade("eve", 2, 0, why), _grade("fay", 2, 0, why)])
    reason = stats[1].common_failure
    assert reason.startswith("ValueError: boom") and stats[1].common_failure_count == 2
    assert not any(c in reason for c in "\x1b\x07\r") and len(reason) <= 2000
