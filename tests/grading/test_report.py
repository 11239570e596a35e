"""vgcourse.grading.report: the scores CSV and feedback files cannot be lost or redirected, and
what they say is clean (issue 14, items 4 and 5). No kernel is started: grades are made here,
or the grading of a submission is replaced by a stand-in.
"""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vgcourse.grading import batch
from vgcourse.grading.batch import find_submissions
from vgcourse.grading.grade import SubmissionGrade, clean_text
from vgcourse.grading.question import Result
from vgcourse.grading.report import FeedbackFolder, ScoresFile, feedback_text, write_feedback, write_scores
from vgcourse.tools.cli import main

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

ID = "ex01.sigmoid_derivative"


def _grade(student: str, points: int = 2, message: str = "✓ passed", **fields) -> SubmissionGrade:
    return SubmissionGrade(student, "01", Path(f"{student}.ipynb"), [Result(ID, points, 2, message)], **fields)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _stand_in(monkeypatch, during=None):
    """Replace the grading of one submission by an instant one: 2/2 points, ``during(path)`` first."""
    def grade(path, *, student=None, **options):
        if during is not None:
            during(Path(path))
        return _grade(student)
    monkeypatch.setattr(batch, "grade_submission", grade)


def _notebooks(folder: Path, *students: str) -> list[Path]:
    paths = []
    for student in students:
        path = folder / student / "01_derivative_bounds.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        paths.append(path)
    return paths


# ---- item 4: output that cannot be lost or redirected --------------------------------------

def test_each_row_is_on_disk_as_soon_as_it_is_graded(tmp_path):
    scores = ScoresFile(tmp_path / "scores.csv")
    scores.add(_grade("alice"))
    assert [row["student"] for row in _rows(tmp_path / "scores.csv")] == ["alice"]
    scores.add(_grade("bob", 0))
    assert [(row["student"], row["total"]) for row in _rows(tmp_path / "scores.csv")] == [("alice", "2"), ("bob", "0")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no temporary file left


def test_a_killed_grader_leaves_the_rows_it_finished_and_a_rerun_merges(tmp_path):
    """SIGKILL while the second submission is graded: the first row is in the CSV, whole."""
    folder = tmp_path / "submissions"
    _notebooks(folder, "alice", "bob")
    out = tmp_path / "scores.csv"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from vgcourse.grading import batch
        from vgcourse.grading.grade import SubmissionGrade
        from vgcourse.grading.question import Result
        def grade(path, *, student=None, **options):
            if student == "bob":
                time.sleep(120)  # killed here
            return SubmissionGrade(student, "01", Path(path), [Result({ID!r}, 2, 2, "ok")])
        batch.grade_submission = grade
        from vgcourse.tools.cli import main
        main(["grade", {str(folder)!r}, "--out", {str(out)!r}])
    """)
    grader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and _rows(out)) and time.monotonic() < deadline and grader.poll() is None:
            time.sleep(0.1)
        grader.send_signal(signal.SIGKILL)
    finally:
        grader.kill()
        grader.wait(timeout=30)
    assert [(row["student"], row["total"]) for row in _rows(out)] == [("alice", "2")]
    assert (tmp_path / "scores-feedback" / "alice.txt").is_file()
    # a re-run of the rest merges into what the killed one left
    bob = folder / "bob" / "01_derivative_bounds.ipynb"
    assert main(["grade", str(bob), "--out", str(out), "--overwrite"]) in (0, 1)
    assert [row["student"] for row in _rows(out)] == ["alice", "bob"]


def test_a_file_created_at_out_while_grading_does_not_lose_the_batch(tmp_path, monkeypatch, capsys):
    """Today: the grader graded everyone, then exited 2 writing nothing."""
    out = tmp_path / "scores.csv"
    _stand_in(monkeypatch, during=lambda path: out.write_text("planted while grading"))
    assert main(["grade", *map(str, _notebooks(tmp_path / "s", "alice", "bob")), "--out", str(out)]) == 0
    assert [row["student"] for row in _rows(out)] == ["alice", "bob"]


def test_a_symlink_at_out_is_refused_before_grading_and_never_written_through(tmp_path, monkeypatch, capsys):
    victim = tmp_path / "victim.csv"
    victim.write_text("student,total,max,status,error\n")  # looks like a scores CSV
    out = tmp_path / "scores.csv"
    out.symlink_to(victim)
    graded = []
    _stand_in(monkeypatch, during=graded.append)
    paths = list(map(str, _notebooks(tmp_path / "s", "alice")))
    assert main(["grade", *paths, "--out", str(out), "--overwrite"]) == 2
    assert "symbolic link" in capsys.readouterr().err and graded == []
    assert victim.read_text() == "student,total,max,status,error\n"
    # planted while grading: the link is replaced by the CSV, the file it pointed to is untouched
    out.unlink()
    _stand_in(monkeypatch, during=lambda path: out.is_symlink() or out.symlink_to(victim))
    assert main(["grade", *paths, "--out", str(out)]) == 0
    assert not out.is_symlink() and _rows(out)[0]["student"] == "alice"
    assert victim.read_text() == "student,total,max,status,error\n"


def test_a_foreign_scores_file_is_refused_before_anything_is_graded(tmp_path, monkeypatch, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("the instructor's own notes")
    graded = []
    _stand_in(monkeypatch, during=graded.append)
    paths = list(map(str, _notebooks(tmp_path / "s", "alice")))
    for extra in ([], ["--overwrite"]):
        assert main(["grade", *paths, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert "nothing was graded" in err or "not a scores CSV" in err
    assert graded == [] and out.read_text() == "the instructor's own notes"


def test_symlinks_and_odd_files_in_the_feedback_folder_are_refused(tmp_path, monkeypatch, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    (feedback / "alice.txt").symlink_to(victim)
    graded = []
    _stand_in(monkeypatch, during=graded.append)
    paths = list(map(str, _notebooks(tmp_path / "s", "alice")))
    argv = ["grade", *paths, "--out", str(tmp_path / "scores.csv"), "--feedback", str(feedback), "--overwrite"]
    assert main(argv) == 2
    assert "symbolic link" in capsys.readouterr().err and graded == [] and victim.read_text() == "precious"
    (feedback / "alice.txt").unlink()
    (feedback / "sub").mkdir()
    assert main(argv) == 2 and "not a regular file" in capsys.readouterr().err
    (feedback / "sub").rmdir()
    linked = tmp_path / "linked"
    linked.symlink_to(feedback)
    with pytest.raises(ValueError, match="symbolic link"):
        FeedbackFolder(linked, ["alice"])
    assert main(argv) == 0 and graded and victim.read_text() == "precious"


def test_out_may_be_in_a_folder_reached_through_a_symlink(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "real")  # e.g. a shared drive
    _stand_in(monkeypatch)
    assert main(["grade", *map(str, _notebooks(tmp_path / "s", "alice")),
                 "--out", str(tmp_path / "results" / "scores.csv")]) == 0
    assert _rows(tmp_path / "real" / "scores.csv")[0]["student"] == "alice"
    assert (tmp_path / "real" / "scores-feedback" / "alice.txt").is_file()
    assert (tmp_path / "real" / "scores-gradebook.csv").is_file()


def test_write_scores_and_feedback_replace_a_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "scores.csv").symlink_to(victim)
    with pytest.raises(ValueError, match="symbolic link"):
        write_scores([_grade("alice")], tmp_path / "scores.csv", overwrite=True)
    (tmp_path / "fb").mkdir()
    (tmp_path / "fb" / "alice.txt").symlink_to(victim)
    with pytest.raises(ValueError, match="symbolic link"):
        write_feedback([_grade("alice")], tmp_path / "fb", overwrite=True)
    assert victim.read_text() == "precious"


# ---- item 5: names ---------------------------------------------------------------------------

def test_identity_comes_from_the_folder_so_a_file_cannot_take_anothers_row(tmp_path):
    root = tmp_path / "submissions"
    (root / "x").mkdir(parents=True)
    (root / "x" / "z.ipynb").write_text("{}")  # today: named "z", pushing the real z to "z-2"
    _notebooks(root, "z")
    (root / "loose.ipynb").write_text("{}")
    found = find_submissions([root])
    assert [(s.path.relative_to(root).as_posix(), s.student, s.note) for s in found] == [
        ("loose.ipynb", "loose", ""), ("x/z.ipynb", "x", ""), ("z/01_derivative_bounds.ipynb", "z", "")]
    assert [s.student for s in find_submissions([str(root / "*" / "*.ipynb")])] == ["x", "z"]


def test_the_command_names_rows_and_feedback_after_the_folders(tmp_path, monkeypatch):
    root = tmp_path / "submissions"
    (root / "x").mkdir(parents=True)
    (root / "x" / "z.ipynb").write_text("{}")
    _notebooks(root, "z")
    _stand_in(monkeypatch)
    out = tmp_path / "scores.csv"
    assert main(["grade", str(root), "--out", str(out)]) == 0
    assert [row["student"] for row in _rows(out)] == ["x", "z"]
    assert sorted(p.name for p in (tmp_path / "scores-feedback").iterdir()) == ["x.txt", "z.txt"]


def test_duplicate_names_are_reported_and_never_take_an_existing_name(tmp_path):
    root = tmp_path / "submissions"
    _notebooks(root, "z", "z-2")
    (root / "z" / "second.ipynb").write_text("{}")
    found = find_submissions([root])
    assert [s.student for s in found] == ["z", "z-3", "z-2"]
    assert found[1].note.startswith("another submission (") and "reported as 'z-3'" in found[1].note
    assert not found[0].note and not found[2].note


def test_a_duplicate_is_graded_and_told_so_in_its_feedback(tmp_path, monkeypatch):
    root = tmp_path / "submissions"
    _notebooks(root, "z")
    (root / "z" / "second.ipynb").write_text("{}")
    _stand_in(monkeypatch)
    out = tmp_path / "scores.csv"
    assert main(["grade", str(root), "--out", str(out)]) == 0
    assert [row["student"] for row in _rows(out)] == ["z", "z-2"]
    second = (tmp_path / "scores-feedback" / "z-2.txt").read_text(encoding="utf-8")
    assert "has the name 'z'" in second and "second.ipynb" in second and "reported as 'z-2'" in second


def test_names_are_nfc_normalised(tmp_path):
    root = tmp_path / "submissions"
    _notebooks(root, "Jos\u00e9", "Jose\u0301")  # the same name typed two ways
    found = find_submissions([root])
    assert {s.student for s in found} == {"Jos\u00e9", "Jos\u00e9-2"} and any(s.note for s in found)


@pytest.mark.parametrize("name", ["\u202eevil", "bell\x07", "cr\rlf", "esc\x1b[31m"])
def test_names_with_control_or_bidi_characters_are_rejected(tmp_path, name):
    root = tmp_path / "submissions"
    _notebooks(root, name)
    with pytest.raises(ValueError, match="U\\+"):
        find_submissions([root])


def test_dot_names_are_rejected(tmp_path):
    (tmp_path / "..ipynb").write_text("{}")
    with pytest.raises(ValueError, match="not a name"):
        find_submissions([tmp_path / "..ipynb"])


def test_a_symlinked_submission_is_reported_not_dropped_and_not_graded(tmp_path, monkeypatch):
    """Today: M's symlink to A's notebook came first, and A's own was dropped as a duplicate."""
    root = tmp_path / "submissions"
    (alice,) = _notebooks(root, "alice")
    (root / "mallory").mkdir()
    (root / "mallory" / "01_derivative_bounds.ipynb").symlink_to(alice)
    assert [s.student for s in find_submissions([root])] == ["alice", "mallory"]
    from vgcourse.grading.submission import grade_submission
    grade = grade_submission(root / "mallory" / "01_derivative_bounds.ipynb")
    assert grade.student == "mallory" and grade.status == "malformed" and "symbolic link" in grade.error


# ---- item 5: text ----------------------------------------------------------------------------

def test_escapes_carriage_returns_and_a_forged_score_line_cannot_pose_as_the_real_one():
    forged = "ValueError: \x1b[2J\x1b]0;title\x07oops\r\nScore: 6 / 6 points\nStatus: ok\u202e"
    grade = _grade("mallory", 0, f"✗ {ID}: {forged}\n  Hint: h", status="errors")
    grade.note("errors", f"cell 3: {forged}")
    text = feedback_text(grade)
    assert [line for line in text.splitlines() if line.startswith("Score:")] == ["Score: 0 / 2 points"]
    assert [line for line in text.splitlines() if line.startswith("Status:")][0].startswith("Status: errors")
    assert not any(c in text for c in "\x1b\r\x07\u202e")
    assert "oops" in text and "  Hint: h" in text


def test_huge_messages_are_truncated(tmp_path):
    huge = "x" * (30 * 2**20)
    grade = _grade("mallory", 0, f"✗ {ID}: " + huge)
    for _ in range(3):
        grade.note("errors", huge)
    write_feedback([grade], tmp_path / "fb")
    write_scores([grade], tmp_path / "scores.csv")
    assert (tmp_path / "fb" / "mallory.txt").stat().st_size < 20_000
    assert (tmp_path / "scores.csv").stat().st_size < 2_000


def test_no_environment_value_of_the_grader_reaches_feedback_or_the_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("VGCOURSE_TEST_SECRET", "hunter2-very-secret")
    grade = _grade("mallory", 0, f"✗ {ID}: KeyError: hunter2-very-secret")
    grade.note("errors", "cell 2: RuntimeError: the token is hunter2-very-secret")
    write_feedback([grade], tmp_path / "fb")
    write_scores([grade], tmp_path / "scores.csv")
    for path in (tmp_path / "fb" / "mallory.txt", tmp_path / "scores.csv"):
        text = path.read_text(encoding="utf-8")
        assert "hunter2" not in text and "$VGCOURSE_TEST_SECRET" in text


def test_clean_text_keeps_ordinary_text():
    assert clean_text("✓ ex01.x: passed\n  ex01.x: a note", 100) == "✓ ex01.x: passed\n  ex01.x: a note"
    assert clean_text("a\tb\nc", 100, lines=False) == "a b c"
