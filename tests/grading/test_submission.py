"""vgcourse.grading.submission: one notebook run in a fresh kernel and scored in the grader's process.

The kernel's limits are in test_runner.py; whole batches in tests/test_grading_batch*.py.
"""

import io
import os
import threading
import zipfile

import pytest
import torch
from fixtures.grading_submissions import solution, write

from vgcourse.grading import submission
from vgcourse.grading.question import Call, Passed, Question, close_tensors, equal_values, public_case
from vgcourse.grading.registry import get_question
from vgcourse.grading.submission import grade_submission

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)


def _scored(question, cases, path):
    """``_score_outputs`` of the file at ``path``, read as the grader reads the exchange folder."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return submission._score_outputs(question, cases, submission._read_results(folder, path.name))
    finally:
        os.close(folder)


DOUBLE = Question(answer=Call("ex01.double", "double", lambda answer, case: answer(case["n"])), points=3,
                  task="return 2 * n", hint="n + n", cases=lambda generator: [{"n": 1}, {"n": 5}],
                  expected=lambda case: 2 * case["n"], compare=lambda got, want, case: equal_values(got, want))


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

    question = Question(answer=Call("ex01.double", "double", lambda answer, case: answer(case["n"])), points=3,
                        task="return 2 * n", hint="n + n", cases=lambda generator: [{"n": 1}, {"n": 5}],
                        expected=lambda case: 2 * case["n"], compare=compare)
    cases = question.cases(None)
    path = tmp_path / "outputs.pt"
    assert "sent no results back" in _scored(question, cases, path).message
    for data, message in (({"missing": "double"}, "`double` is not defined in the notebook. Task: return 2 * n"),
                          ({"outputs": [{"ok": 2}], "points": 3}, "could not be read"),
                          ({"outputs": [{"ok": 2}]}, "could not be read"),  # one output for two cases
                          ({"outputs": [{"ok": 2}, {"ok": 11}]}, "expected 10, got 11")):
        torch.save(data, path)
        result = _scored(question, cases, path)
        assert result.points == 0 and message in result.message
    torch.save({"outputs": [{"ok": 2}, {"ok": 10}]}, path)
    result = _scored(question, cases, path)
    assert result.points == 3 and result.message.endswith("\n  ex01.double: measured in the grader")
    monkeypatch.setattr(submission, "MAX_RESULTS_BYTES", 10)
    assert "too large" in _scored(question, cases, path).message


# ---- results the kernel could forge (issue 14, item 3) -----------------------------------------

def test_a_symlink_planted_in_the_exchange_folder_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the instructor's file")
    folder = tmp_path / "exchange"
    folder.mkdir()
    (folder / "ex01.double.cases.pt").symlink_to(victim)  # a name the kernel guessed
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        submission._write_cases(fd, "x.cases.pt", [{"n": 1}])
        os.symlink(victim, folder / "planted.pt")
        with pytest.raises(FileExistsError):
            submission._write_cases(fd, "planted.pt", [{"n": 1}])
        assert "could not be opened" in submission._read_results(fd, "planted.pt")
    finally:
        os.close(fd)
    assert victim.read_text() == "the instructor's file"
    assert torch.load(folder / "x.cases.pt", weights_only=True) == [{"n": 1}]


def test_a_symlinked_exchange_folder_is_refused(tmp_path):
    class Session:
        outputs = tmp_path / "exchange" / "outputs.pt"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "exchange").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        submission._exchange_folder(Session())


def test_a_fifo_as_the_outputs_file_does_not_block_the_grader(tmp_path):
    os.mkfifo(tmp_path / "outputs.pt")
    answer = []
    reader = threading.Thread(target=lambda: answer.append(_scored(DOUBLE, [{"n": 1}], tmp_path / "outputs.pt")),
                              daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert answer, "the grader blocked opening a FIFO"
    assert answer[0].points == 0 and "not a regular file" in answer[0].message


def test_a_complex_tensor_with_the_right_real_part_scores_nothing():
    expected = torch.tensor([0.25, 0.1])
    assert "complex" in close_tensors(torch.complex(expected, torch.ones(2)), expected)
    question = Question(answer=Call("ex01.same", "same", lambda a, c: a(c["x"])), points=2, task="t", hint="h",
                        cases=lambda g: [{"x": expected}],
                        expected=lambda case: case["x"], compare=lambda got, want, case: close_tensors(got, want))
    from vgcourse.grading.question import score
    assert score(question, [{"x": expected}], [{"ok": torch.complex(expected, torch.ones(2))}]).points == 0
    assert score(question, [{"x": expected}], [{"ok": expected.clone()}]).points == 2


def _deep_outputs_file(path, depth: int) -> None:
    """A torch.save archive of ``{"outputs": [{"ok": [[[...]]]}, {"ok": 10}]}``, ``depth`` lists
    deep, its pickle written opcode by opcode (pickling it, or torch.save, would recurse)."""
    def text(value: str) -> bytes:
        return b"X" + len(value).to_bytes(4, "little") + value.encode()
    deep = b"]" * depth + b"a" * (depth - 1)
    pickled = (b"\x80\x02}" + text("outputs") + b"]}" + text("ok") + deep + b"sa}" + text("ok") + b"K\x0asas.")
    buffer = io.BytesIO()
    torch.save({"outputs": []}, buffer)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for item in source.infolist():
            data = pickled if item.filename.endswith("/data.pkl") else source.read(item)
            target.writestr(item.filename, data)


def test_a_deeply_nested_result_costs_the_question_not_the_batch(tmp_path):
    path = tmp_path / "outputs.pt"
    _deep_outputs_file(path, 3)
    assert torch.load(path, weights_only=True)["outputs"][0]["ok"] == [[[]]]  # the file is well-formed
    assert "expected 2, got [[[]]]" in _scored(DOUBLE, [{"n": 1}, {"n": 5}], path).message
    _deep_outputs_file(path, 200_000)
    result = _scored(DOUBLE, [{"n": 1}, {"n": 5}], path)  # no RecursionError escapes
    assert result.points == 0
    assert "nested more than" in result.message or "could not be read" in result.message, result.message


def test_the_ex10_answer_label_is_never_sent_to_the_kernel():
    question = get_question("ex10.diagnose")
    cases = question.cases(torch.Generator().manual_seed(0))
    labels = {case["problem"] for case in cases}
    assert labels == {"vanishing", "exploding", "dead", "healthy"}
    sent = [public_case(question, case) for case in cases]
    assert not any("problem" in case or value in labels for case in sent for value in case.values())
    assert [question.expected(case) for case in cases] == [case["problem"] for case in cases]
    assert set(cases[0]) - set(sent[0]) == {"problem"}


def test_folders_left_by_a_killed_grader_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{submission.FOLDER_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{submission.FOLDER_PREFIX}{os.getpid()}-def"
    other = tmp_path / "someone-elses"
    for folder in (stale, live, other):
        (folder / "work").mkdir(parents=True)
    assert submission.remove_stale_folders(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
