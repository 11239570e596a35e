"""The batch grader cannot be talked into points, stops at the overall deadline, and its
command line (``vgcourse grade``) writes the report, prints the summary and refuses to overwrite."""

import csv

import pytest
from fixtures.grading_submissions import SESSION_FOLDER, IDS, answer_code, answer_index, solution, untouched, write

from vgcourse.tools.cli import main
from vgcourse.grading.batch import grade_submissions
from vgcourse.grading.submission import grade_submission

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

CHEAT = """\
import torch
import vgcourse.grading.check
import vgcourse.grading.kernel
import vgcourse.grading.question
from vgcourse.grading.question import Result


def check(question_id, answer=None):  # every check cell now prints a pass
    print(f"✓ {question_id}: passed 4 randomized tests (2/2 points)")


def full_marks(question, *args, **kwargs):
    return Result(question.id if hasattr(question, "id") else str(question), 100, 100, "✓ full marks")


class Payload:  # runs a command in whoever unpickles it
    def __reduce__(self):
        import os
        return os.system, ("touch " + MARKER,)


def fake_answer_cases(question_id, namespace, cases_path, outputs_path):
    count = len(torch.load(cases_path, weights_only=True))
    if question_id == "ex01.sigmoid_derivative":  # a well-formed reply with made-up values
        torch.save({"outputs": [{"ok": torch.zeros(3)}] * count}, outputs_path)
    elif question_id == "ex01.tanh_derivative":  # junk
        torch.save({"outputs": [{"ok": "✓"}] * 1000, "points": 100}, outputs_path)
    else:  # an object that would run code if the grader unpickled it
        torch.save({"outputs": Payload()}, outputs_path)


vgcourse.grading.question.score = full_marks
vgcourse.grading.check.run_question = full_marks
vgcourse.grading.kernel.answer_cases = fake_answer_cases
"""


def test_a_submission_cannot_grade_itself(tmp_path):
    marker = tmp_path / "unpickled"
    nb = solution()
    for qid, wrong in zip(IDS, ("sigmoid_derivative = lambda x: x * 0",
                                "tanh_derivative = lambda x: x",
                                "input_for_derivative = lambda d: 0.0")):
        cell = nb.cells[answer_index(nb, qid)]
        cell.source = wrong
        cell.metadata["vgcourse"]["points"] = 100  # the grader's registry decides, not the notebook
    nb.cells.insert(2, answer_code(f"MARKER = {str(marker)!r}\n" + CHEAT))  # an answer cell: it runs
    grade = grade_submission(write(nb, tmp_path, "mallet"), cell_timeout=10, timeout=120)
    assert (grade.status, grade.total, grade.max_points) == ("ok", 0, 6)
    assert [r.points for r in grade.results] == [0, 0, 0]
    assert "values differ" in grade.results[0].message or "shape" in grade.results[0].message
    assert "could not be read" in grade.results[1].message
    assert "could not be read (UnpicklingError)" in grade.results[2].message
    assert not marker.exists()  # the grader never ran the payload


def test_the_overall_deadline_stops_a_slow_submission(tmp_path):
    nb = solution()
    nb.cells[answer_index(nb, IDS[1])].source += "\nimport time\ntime.sleep(1000)\n"
    grade = grade_submission(write(nb, tmp_path, "sloth"), cell_timeout=60, timeout=8)
    assert grade.status == "overall timeout" and "the 8 s time limit for the whole notebook ran out" in grade.error
    assert grade.total == 0 and all("not graded" in r.message for r in grade.results)
    assert grade.seconds < 30


def test_grade_command_writes_the_report_and_prints_a_summary(tmp_path, capsys):
    good = write(solution(), tmp_path / "submissions", "alice")
    empty = tmp_path / "submissions" / "bob.ipynb"
    empty.write_text("")
    out = tmp_path / "scores.csv"
    assert main(["grade", str(good), str(empty), "--out", str(out), "--cell-timeout", "30"]) == 0
    printed = capsys.readouterr().out
    assert f"Graded 2 submissions (exercise 01): 1 ok, 1 malformed; mean 3 / 6 points → {out}" in printed
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["student"], r["total"], r["max"], r["status"]) for r in rows] == [("alice", "6", "6", "ok"),
                                                                                ("bob", "0", "0", "malformed")]
    feedback = tmp_path / "scores-feedback"
    assert sorted(p.name for p in feedback.iterdir()) == ["alice.txt", "bob.txt"]
    assert str(feedback) in printed
    # statistics per question, a figure, and a grade book an LMS imports, beside the CSV
    with (tmp_path / "scores-questions.csv").open(newline="", encoding="utf-8") as file:
        questions = list(csv.DictReader(file))
    assert len(questions) == 3 and all(q["graded"] == "1" for q in questions)   # bob: malformed, no questions
    assert (tmp_path / "scores-questions.png").read_bytes().startswith(b"\x89PNG")
    with (tmp_path / "scores-gradebook.csv").open(newline="", encoding="utf-8") as file:
        assert list(csv.reader(file)) == [["identifier", "percentage"], ["alice", "100.0"], ["bob", "0.0"]]
    assert "full marks 100%" in printed and "scores-gradebook.csv" in printed

    # a second run must not replace the instructor's files ...
    before = out.read_bytes()
    assert main(["grade", str(empty), "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err and out.read_bytes() == before
    # ... unless asked to
    assert main(["grade", str(empty), "--out", str(out), "--overwrite", "--assignment", "1"]) == 0
    assert "1 malformed; mean 0 / 6 points" in capsys.readouterr().out


def test_grade_command_usage_errors(tmp_path, capsys):
    good = write(solution(), tmp_path, "alice")
    (tmp_path / "empty").mkdir()
    out = str(tmp_path / "scores.csv")
    for argv, message in (([str(tmp_path / "missing.ipynb")], "does not exist"),
                          ([str(tmp_path / "empty")], "is a folder with no notebooks in it"),
                          ([str(good), "--feedback", str(good)], "is a file, not a folder")):
        assert main(["grade", *argv, "--out", out]) == 2
        assert message in capsys.readouterr().err
    for argv, message in ((["--cell-timeout", "0"], "must be a positive number of seconds, got '0'"),
                          (["--memory-limit", "lots"], "must be a positive number of megabytes"),
                          (["--assignment", "42"], "unknown exercise '42'"),
                          ([], "required: --out")):
        with pytest.raises(SystemExit) as exit_info:
            main(["grade", str(good), *argv] + (["--out", out] if argv else []))
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "scores.csv").exists()


def test_grade_help_documents_names_statuses_and_limits(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for words in ("alice/01_derivative_bounds.ipynb", "kernel died", "overall timeout", "malformed",
                  "--memory-limit", "--overwrite", "container"):
        assert words in text


def test_parallel_grading_gives_the_same_grades_in_the_same_order(tmp_path):
    paths = [write(solution(), tmp_path / "submissions", "alice"), write(untouched(), tmp_path / "submissions", "bob")]
    (tmp_path / "submissions" / "carol.ipynb").write_text("not json")
    paths.append(tmp_path / "submissions" / "carol.ipynb")
    grades = grade_submissions(paths, jobs=2, cell_timeout=30, timeout=120, progress=False)
    assert [(g.student, g.status, g.total) for g in grades] == [
        ("alice", "ok", 6), ("bob", "not attempted", 0), ("carol", "malformed", 0)]
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        grade_submissions(paths, jobs=0, progress=False)


FORGER = """\
import os
SECRET = os.environ.get("VGCOURSE_TEST_SECRET", "no-such-variable")
FORGED = "\\x1b[2J\\x1b]0;graded\\x07\\r\\nScore: 6 / 6 points\\nStatus: ok\\u202e " + SECRET + " "
def sigmoid_derivative(x):
    raise ValueError(FORGED + "x" * 3_000_000)  # the outputs of all the tests must stay under 64 MB
"""


def test_feedback_text_is_clean_whatever_the_submission_says(tmp_path, monkeypatch):
    """Escapes, a carriage return, a forged score line, an environment value and a 30 MB message,
    raised by an answer and by a cell, reach neither the feedback nor the CSV as they are."""
    monkeypatch.setenv("VGCOURSE_TEST_SECRET", "hunter2-very-secret")
    nb = untouched()
    nb.cells[answer_index(nb, IDS[0])].source = FORGER
    nb.cells.insert(answer_index(nb, IDS[0]) + 1, answer_code("raise RuntimeError(FORGED + 'x' * 30_000_000)"))
    out = tmp_path / "scores.csv"
    assert main(["grade", str(write(nb, tmp_path / "submissions", "mallory")), "--out", str(out),
                 "--cell-timeout", "30"]) == 0
    feedback = (tmp_path / "scores-feedback" / "mallory.txt").read_text(encoding="utf-8")
    assert [line for line in feedback.splitlines() if line.startswith("Score:")] == ["Score: 0 / 6 points"]
    assert [line for line in feedback.splitlines() if line.startswith("Status:")] == [
        line for line in feedback.splitlines() if line.startswith("Status: errors")]
    for text in (feedback, out.read_text(encoding="utf-8")):
        assert not any(c in text for c in "\x1b\r\x07\u202e") and "hunter2" not in text
    answer_line = next(line for line in feedback.splitlines() if line.startswith(f"✗ {IDS[0]}: ValueError:"))
    assert "Score: 6 / 6 points Status: ok " in answer_line  # on the ✗ line, inert (sandboxed: no secret)
    assert "RuntimeError: Score: 6 / 6 points" in feedback and len(feedback) < 20_000


PLANTER = """\
import os
import vgcourse.grading.kernel
exchange = {session} / "exchange"
for qid in {ids!r}:  # the names the grader wrote the cases to before they were random
    try:
        os.symlink({victim!r}, exchange / f"{{qid}}.cases.pt")
    except OSError:
        pass  # the sandbox's exchange folder is read-only


def answers_through_links(question_id, namespace, cases_path, outputs_path):
    if os.path.exists(outputs_path):
        os.remove(outputs_path)
    if question_id == {ids[0]!r}:
        os.mkfifo(outputs_path)  # the grader before issue 14 blocked opening it
    else:
        os.symlink({victim!r}, outputs_path)


vgcourse.grading.kernel.answer_cases = answers_through_links
"""


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "not sandboxed"])
def test_links_and_fifos_in_the_exchange_folder_redirect_and_block_nothing(tmp_path, sandboxed):
    victim = tmp_path / "victim.txt"
    victim.write_text("the instructor's file")
    nb = solution()
    nb.cells.insert(2, answer_code(PLANTER.format(ids=IDS, victim=str(victim), session=SESSION_FOLDER)))
    grade = grade_submission(write(nb, tmp_path, "mallet"), cell_timeout=10, timeout=60, sandboxed=sandboxed)
    assert victim.read_text() == "the instructor's file"
    assert (grade.total, grade.max_points) == (0, 6) and grade.status != "grader error", grade.error
    if sandboxed:  # the kernel can neither remove nor replace its outputs file
        assert all("could not be tested" in r.message for r in grade.results), grade.results
    else:
        assert "not a regular file" in grade.results[0].message
        assert all("could not be opened" in r.message for r in grade.results[1:])
    assert grade.seconds < 50


def test_a_grading_process_that_dies_costs_only_its_submission(tmp_path):
    """A crash in a parallel grader process (here: a notebook whose grading kills the process)
    is that submission's 'grader error'; the others are graded and written."""
    from vgcourse.grading import batch
    written = []
    paths = [write(untouched(), tmp_path / "submissions", name) for name in ("alice", "bob")]
    (tmp_path / "submissions" / "carol.ipynb").write_text("not json")
    paths.append(tmp_path / "submissions" / "carol.ipynb")
    original = batch.grade_submission
    try:
        batch.grade_submission = _crash_on_bob  # picklable by reference: defined at module level below
        grades = grade_submissions(paths, jobs=2, cell_timeout=30, timeout=120, progress=False,
                                   on_graded=written.append)
    finally:
        batch.grade_submission = original
    by_name = {g.student: g for g in grades}
    assert [g.student for g in grades] == ["alice", "bob", "carol"]
    assert by_name["bob"].status == "grader error" and "process died" in by_name["bob"].error
    assert by_name["alice"].status == "not attempted"
    assert by_name["carol"].status == "malformed" and sorted(g.student for g in written) == ["alice", "bob", "carol"]


def _crash_on_bob(path, **options):
    import os
    if options.get("student") == "bob":
        os._exit(3)  # as a segfault would
    return grade_submission(path, **options)


def test_a_replaced_exchange_folder_costs_the_submission_not_the_grader(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nb = solution()
    nb.cells.insert(2, answer_code(f"import os\nsession = {SESSION_FOLDER}\n"
                                   "os.rename(session / 'exchange', session / 'moved')\n"
                                   f"os.symlink({str(elsewhere)!r}, session / 'exchange')"))
    path = write(nb, tmp_path, "mallet")
    # The grader's own defence, without the sandbox: it notices, and writes nothing through the link.
    grade = grade_submission(path, cell_timeout=10, timeout=60, sandboxed=False)
    assert grade.status == "errors" and "exchange folder was replaced" in grade.error
    assert grade.total == 0 and "tampered" in grade.results[0].message
    assert list(elsewhere.iterdir()) == []
    # In the sandbox the kernel cannot even move the folder: its session folder is not its to change.
    grade = grade_submission(path, cell_timeout=10, timeout=60)
    assert grade.status == "errors" and grade.error.startswith("cell 3: "), grade.error
    assert list(elsewhere.iterdir()) == [] and grade.total == 6, grade.error  # then graded as usual
    assert grade.total == grade.max_points  # the answers are still graded: the attack only failed
