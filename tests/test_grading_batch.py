"""The batch grader: one batch of good, untouched, damaged, crashing and malformed submissions,
the CSV and feedback written from it, and the parts that need no kernel.

Kernel limits (timeouts, memory, stuck kernels) are in grading/test_runner.py; cheating,
the overall deadline and the command line in test_grading_batch_cheating.py.
"""

import csv
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures.grading_submissions import IDS, answer_index, running, solution, untouched, write

from vgcourse.grading.batch import check_submission_paths, grade_submissions, student_names
from vgcourse.grading.grade import SubmissionGrade
from vgcourse.grading.question import Result
from vgcourse.grading.report import feedback_paths, summary_line, write_feedback, write_scores

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

MALFORMED = {
    "erin": ("", "the file is empty"),
    "frank": ('{"cells": [', "not valid JSON"),
    "grace": ("[1, 2, 3]", "JSON but not a notebook"),
    "heidi": ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": "x"}]}',
              "not a valid notebook"),
}


CHILD_SECONDS = "300.0271"  # finds the child: in the sandbox its pid is not the machine's


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Eight submissions graded in ONE call; a dying kernel comes first, the good one later."""
    folder = tmp_path_factory.mktemp("submissions")
    dying = solution()
    dying.cells[answer_index(dying, IDS[1])].source += (
        "\nimport os, subprocess\n"
        f"child = subprocess.Popen(['sleep', '{CHILD_SECONDS}'])  # outlives the kernel unless the grader kills it\n"
        "os._exit(1)\n")
    paths = [write(dying, folder, "dave")]
    for student, (text, _) in MALFORMED.items():
        paths.append(folder / f"{student}.ipynb")
        paths[-1].write_text(text)
    deleted = solution()
    del deleted.cells[answer_index(deleted, IDS[1])]
    paths += [write(solution(), folder, "alice"), write(untouched(), folder, "bob"), write(deleted, folder, "carol")]
    before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.rglob("*") if path.is_file()}
    grades = grade_submissions(paths, cell_timeout=10, timeout=120, progress=False)
    child = CHILD_SECONDS
    after = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.rglob("*") if path.is_file()}
    return grades, before, after, child


@pytest.fixture(scope="module")
def by_student(batch):
    return {grade.student: grade for grade in batch[0]}


def test_every_submission_gets_its_row_in_order(batch):
    grades = batch[0]
    assert [g.student for g in grades] == ["dave", *MALFORMED, "alice", "bob", "carol"]
    assert [g.status for g in grades] == ["kernel died"] + ["malformed"] * 4 + ["ok", "not attempted", "ok"]


def test_submissions_are_not_modified_and_nothing_is_written_next_to_them(batch):
    _, before, after, _ = batch
    assert after == before


def test_solution_scores_full_marks(by_student):
    alice = by_student["alice"]
    assert (alice.total, alice.max_points, alice.status, alice.error) == (6, 6, "ok", "")
    assert [r.question_id for r in alice.results] == list(IDS)
    assert all(r.passed and r.message.startswith("✓") for r in alice.results)
    assert alice.assignment == "01" and alice.problems == []


def test_untouched_exercise_scores_zero_without_crashing(by_student):
    bob = by_student["bob"]
    assert (bob.total, bob.max_points, bob.status, bob.error) == (0, 6, "not attempted", "no question was answered")
    assert not any(result.answered for result in bob.results)
    assert all("not answered yet" in r.message for r in bob.results)


def test_a_deleted_answer_cell_costs_only_its_question(by_student):
    carol = by_student["carol"]
    assert [r.points for r in carol.results] == [2, 0, 2]
    assert "`tanh_derivative` is not defined in the notebook" in carol.results[1].message
    # its check cell, left in place, would fail, but grading runs only the imports and answer cells
    assert carol.status == "ok" and carol.problems == []


def test_a_dying_kernel_costs_that_submission_and_the_batch_goes_on(by_student):
    dave = by_student["dave"]
    assert (dave.total, dave.max_points) == (0, 6)
    assert "kernel died" in dave.error and "cell 7" in dave.error  # the tanh answer cell
    assert all("not graded" in r.message for r in dave.results)
    assert by_student["alice"].total == 6  # graded after it


def test_processes_left_by_a_dead_kernel_are_killed(batch):
    assert not running(batch[3])


@pytest.mark.parametrize("student", list(MALFORMED))
def test_malformed_files_are_reported_not_run(by_student, student):
    grade = by_student[student]
    assert grade.status == "malformed" and MALFORMED[student][1] in grade.error
    assert (grade.results, grade.total, grade.max_points, grade.assignment) == ([], 0, 0, None)
    assert grade.seconds < 2  # no kernel was started


def test_csv_has_one_column_per_question_and_one_row_per_submission(batch, tmp_path):
    path = write_scores(batch[0], tmp_path / "out" / "scores.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["student", *IDS, "total", "max", "status", "error"]
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert list(table) == ["dave", *MALFORMED, "alice", "bob", "carol"]
    assert table["alice"] == {"student": "alice", IDS[0]: "2", IDS[1]: "2", IDS[2]: "2",
                              "total": "6", "max": "6", "status": "ok", "error": ""}
    assert [table["carol"][q] for q in IDS] == ["2", "0", "2"] and table["carol"]["status"] == "ok"
    assert table["erin"][IDS[0]] == "" and table["erin"]["max"] == "0"
    assert table["erin"]["error"] == "the file is empty"


def test_feedback_file_per_student(batch, tmp_path):
    paths = write_feedback(batch[0], tmp_path / "feedback")
    assert [p.name for p in paths] == [f"{g.student}.txt" for g in batch[0]]
    alice = (tmp_path / "feedback" / "alice.txt").read_text(encoding="utf-8")
    assert "Score: 6 / 6 points" in alice and "Status: ok" in alice
    assert alice.count("✓ ex01.") == 3
    carol = (tmp_path / "feedback" / "carol.txt").read_text(encoding="utf-8")
    assert "✗ ex01.tanh_derivative: `tanh_derivative` is not defined" in carol and "NameError" not in carol
    assert "Status: kernel died" in (tmp_path / "feedback" / "dave.txt").read_text(encoding="utf-8")


def test_existing_reports_are_never_overwritten_silently(batch, tmp_path):
    grades = batch[0]
    csv_path = write_scores(grades, tmp_path / "scores.csv")
    before = csv_path.read_text()
    with pytest.raises(FileExistsError, match="already exists.*--overwrite"):
        write_scores(grades, csv_path)
    assert csv_path.read_text() == before
    write_scores(grades, csv_path, overwrite=True)
    assert csv_path.read_text() == before     # the same grades again: the same file
    csv_path.write_text("the instructor's own notes")
    with pytest.raises(ValueError, match="is not a scores CSV of vgcourse grade"):
        write_scores(grades, csv_path, overwrite=True)
    assert csv_path.read_text() == "the instructor's own notes"

    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "bob.txt").write_text("notes")
    with pytest.raises(FileExistsError, match="bob.txt"):
        write_feedback(grades, folder)
    assert [p.name for p in folder.iterdir()] == ["bob.txt"]  # nothing written at all
    write_feedback(grades, folder, overwrite=True)
    assert "Score: 0 / 6" in (folder / "bob.txt").read_text(encoding="utf-8")


def test_summary_line(batch):
    line = summary_line(batch[0], "scores.csv")
    assert line == ("Graded 8 submissions (exercise 01): 2 ok, 1 not attempted, 1 kernel died, 4 malformed; "
                    "mean 1.25 / 6 points → scores.csv")


# ---- parts that need no kernel ---------------------------------------------------------------


def test_student_names_are_made_unique():
    assert student_names(["a/alice.ipynb", "b/alice.ipynb", "c/alice/01_x.ipynb"]) == ["alice", "alice-2", "alice-3"]


def test_feedback_file_names_are_safe_and_unique(tmp_path):
    names = [p.name for p in feedback_paths(["../../evil", "Alice", "alice", "a b"], tmp_path)]
    assert names == ["evil.txt", "Alice.txt", "alice-2.txt", "a_b.txt"]
    assert all(p.parent == tmp_path for p in feedback_paths(["../../evil"], tmp_path))


def test_arguments_are_checked_before_anything_runs(tmp_path):
    good = write(solution(), tmp_path, "alice")
    (tmp_path / "notes.txt").write_text("x")
    for paths, message in (([tmp_path / "nope.ipynb"], "does not exist"), ([tmp_path / "notes.txt"], "not a notebook"),
                           ([tmp_path / "empty"], "does not exist"), ([], "no submissions"),
                           ([tmp_path / "none-*.ipynb"], "matches no files")):
        with pytest.raises(ValueError, match=message):
            grade_submissions(paths, progress=False)
    for limits, message in (({"cell_timeout": 0}, "cell_timeout must be a positive number of seconds, got 0"),
                            ({"timeout": -1}, "timeout must be"), ({"memory_limit_mb": "4G"}, "memory_limit_mb"),
                            ({"assignment": "42"}, "unknown exercise")):
        with pytest.raises(ValueError, match=message):
            grade_submissions([good], progress=False, **limits)


def test_csv_cells_cannot_become_spreadsheet_formulas(tmp_path):
    grade = SubmissionGrade("=cmd|' /C calc'!A0", "01", Path("x.ipynb"),
                            [Result(IDS[0], 0, 2, "✗")], status="errors", error="cell 2: =HYPERLINK(\"http://x\")\nmore")
    path = write_scores([grade], tmp_path / "scores.csv")
    row = list(csv.reader(path.open(newline="", encoding="utf-8")))[1]
    assert row[0].startswith("'=") and row[-1] == "cell 2: =HYPERLINK(\"http://x\") more"


def test_folders_and_patterns_stand_for_the_notebooks_in_them(tmp_path):
    submissions = tmp_path / "submissions"
    expected = [write(solution(), submissions, student) for student in ("alice", "bob")]
    write(solution(), submissions / "alice", ".ipynb_checkpoints")   # JupyterLab's autosave: not a submission
    (submissions / "alice" / "notes.txt").write_text("not a submission")
    assert check_submission_paths([submissions]) == expected
    assert check_submission_paths([str(submissions / "*" / "01_*.ipynb")]) == expected
    assert student_names(expected) == ["alice", "bob"]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="is a folder with no notebooks in it"):
        check_submission_paths([tmp_path / "nothing"])


def test_regrading_some_students_updates_their_rows_and_keeps_the_others(batch, by_student, tmp_path):
    csv_path = write_scores(batch[0], tmp_path / "scores.csv")
    with csv_path.open(newline="", encoding="utf-8") as file:
        first = list(csv.DictReader(file))
    bob = [row["student"] for row in first].index("bob")
    regraded = replace(by_student["alice"], student="bob")   # bob handed in a full solution late
    newcomer = replace(by_student["alice"], student="zoe")
    write_scores([regraded, newcomer], csv_path, overwrite=True)
    with csv_path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["student"] for row in rows] == [row["student"] for row in first] + ["zoe"]
    assert (rows[bob]["total"], rows[bob]["status"]) == (str(by_student["alice"].total), "ok")
    assert first[bob]["total"] == "0"
    assert [row for i, row in enumerate(rows[:-1]) if i != bob] == [row for i, row in enumerate(first) if i != bob]
