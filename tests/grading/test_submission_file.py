"""vgcourse.grading.submission_file: reading a submitted file and telling which exercise it is."""

import pytest
from fixtures.grading_submissions import SOLUTION, solution

from vgcourse.grading.submission_file import (
    MalformedSubmission, normalize_assignment, read_submission, student_name, submission_assignment,
)


def test_student_name_is_the_file_or_the_folder_of_a_handed_out_file():
    assert student_name("submissions/alice/01_derivative_bounds.ipynb") == "alice"
    assert student_name("submissions/alice.ipynb") == "alice"
    assert student_name("submissions/bob_01_derivative_bounds.ipynb") == "bob_01_derivative_bounds"
    assert student_name("submissions/carol/01_Derivative.ipynb") == "01_Derivative"  # not the handed-out name


def test_which_exercise(tmp_path):
    nb = solution()
    assert submission_assignment(nb, "x/whatever.ipynb") == "01"  # metadata
    del nb.metadata["vgcourse"]
    assert submission_assignment(nb, "x/01_mine.ipynb") == "01"  # file name
    assert submission_assignment(nb, "x/alice.ipynb") == "01"  # question ids in the cells
    for cell in nb.cells:
        cell.metadata.pop("vgcourse", None)
    with pytest.raises(MalformedSubmission, match="pass --assignment"):
        submission_assignment(nb, "x/alice.ipynb")
    nb.metadata["vgcourse"] = {"assignment": "99"}
    with pytest.raises(MalformedSubmission, match="exercise '99'"):
        submission_assignment(nb, "x/alice.ipynb")
    assert normalize_assignment("1") == normalize_assignment("ex01") == normalize_assignment(1) == "01"
    with pytest.raises(ValueError, match="unknown exercise '99'; choose one of"):
        normalize_assignment("99")


def test_read_submission_accepts_the_solution_and_rejects_binary(tmp_path):
    assert len(read_submission(SOLUTION).cells) > 5
    path = tmp_path / "x.ipynb"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(MalformedSubmission, match="not UTF-8"):
        read_submission(path)
