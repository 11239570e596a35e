"""vgcourse.grading.submission: one notebook run in a fresh kernel and scored in the grader's process.

The kernel's limits are in test_runner.py; whole batches in tests/test_grading_batch*.py.
"""

import torch
from fixtures.grading_submissions import solution, write

from vgcourse.grading import submission
from vgcourse.grading.question import Passed, Question, equal_values
from vgcourse.grading.submission import grade_submission


def test_unrecognisable_exercise_is_malformed(tmp_path):
    nb = solution()
    del nb.metadata["vgcourse"]
    for cell in nb.cells:
        cell.metadata.pop("vgcourse", None)
    path = write(nb, tmp_path, "zoe").rename(tmp_path / "zoe.ipynb")
    grade = grade_submission(path)
    assert grade.status == "malformed" and "cannot tell which exercise this is; pass --assignment" in grade.error


def test_with_assignment_a_malformed_file_still_lists_the_questions(tmp_path):
    path = tmp_path / "yann.ipynb"
    path.write_text("")
    grade = grade_submission(path, assignment="01")
    assert (grade.status, grade.total, grade.max_points) == ("malformed", 0, 6)
    assert all("not graded (malformed)" in r.message for r in grade.results)


def test_results_from_the_kernel_are_checked_then_scored_here(tmp_path, monkeypatch):
    def compare(got, want, case):
        return equal_values(got, want) or Passed("measured in the grader")

    question = Question(id="ex01.double", points=3, answer_name="double", task="return 2 * n", hint="n + n",
                        cases=lambda generator: [{"n": 1}, {"n": 5}], call=lambda answer, case: answer(case["n"]),
                        expected=lambda case: 2 * case["n"], compare=compare)
    cases = question.cases(None)
    path = tmp_path / "outputs.pt"
    assert "sent no results back" in submission._score_outputs(question, cases, path).message
    for data, message in (({"missing": "double"}, "`double` is not defined in the notebook. Task: return 2 * n"),
                          ({"outputs": [{"ok": 2}], "points": 3}, "could not be read"),
                          ({"outputs": [{"ok": 2}]}, "could not be read"),  # one output for two cases
                          ({"outputs": [{"ok": 2}, {"ok": 11}]}, "expected 10, got 11")):
        torch.save(data, path)
        result = submission._score_outputs(question, cases, path)
        assert result.points == 0 and message in result.message
    torch.save({"outputs": [{"ok": 2}, {"ok": 10}]}, path)
    result = submission._score_outputs(question, cases, path)
    assert result.points == 3 and result.message.endswith("\n  ex01.double: measured in the grader")
    monkeypatch.setattr(submission, "MAX_RESULTS_BYTES", 10)
    assert "too large" in submission._score_outputs(question, cases, path).message
