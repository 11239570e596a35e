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


def test_student_name_below_a_folder_of_submissions_is_the_folder():
    assert student_name("submissions/x/z.ipynb", "submissions") == "x"  # never z: z may be another student
    assert student_name("submissions/alice/deep/notes.ipynb", "submissions") == "alice"
    assert student_name("submissions/alice.ipynb", "submissions") == "alice"
    assert student_name("submissions/Jose\u0301.ipynb") == "Jos\u00e9"  # NFC
    for bad in ("submissions/\u202eevil.ipynb", "submissions/a\x1b[2J.ipynb", "submissions/..ipynb"):
        with pytest.raises(ValueError, match="rename it"):
            student_name(bad)


def test_read_submission_refuses_symlinks_and_fifos_without_blocking(tmp_path):
    import os
    link = tmp_path / "link.ipynb"
    link.symlink_to(SOLUTION)
    with pytest.raises(MalformedSubmission, match="symbolic link"):
        read_submission(link)
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)  # a plain open() would wait here for a writer, forever
    with pytest.raises(MalformedSubmission, match="not a regular file"):
        read_submission(fifo)
