"""Grading one submitted notebook: run its answers in a fresh kernel, then score them here.

The submission's imports and answer cells (:mod:`vgcourse.grading.answer_cells`) run in a fresh,
sandboxed and locked kernel (:class:`~vgcourse.grading.runner.KernelSession`); no other cell
runs. The questions, their points, the random test cases, the reference answers and the
comparison all stay in the grader's own process — the kernel cannot even read the reference
answers' files, and course functions that answer a question by themselves raise there
(:mod:`vgcourse.grading.lockdown`). The kernel only calls the learner's answers on the cases
(:func:`vgcourse.grading.kernel.answer_cases`) and hands back plain data, read with
``torch.load(weights_only=True)`` and checked strictly. So a generic cell that substitutes
answers, edited check cells, a redefined ``check`` or a patched ``vgcourse.grading`` change
nothing but that submission's own outputs.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path

import torch
from nbformat import NotebookNode

from vgcourse.grading.answer_cells import graded_cells
from vgcourse.grading.files import FileRefused, create_file, read_regular
from vgcourse.grading.grade import MAX_REASON, SubmissionGrade, clean_text
from vgcourse.grading.kernel import MISSING
from vgcourse.grading.question import Question, Result, public_case, score
from vgcourse.grading.registry import ASSIGNMENTS, assignment_questions
from vgcourse.grading.runner import CellRun, KernelSession
from vgcourse.grading.submission_file import (
    MalformedSubmission, normalize_assignment, read_submission, student_name, submission_assignment,
)
from vgcourse.tools.notebook_format import file_number
from vgcourse.validation import is_real

MAX_RESULTS_BYTES = 64 * 2**20

FOLDER_PREFIX = "vgcourse-grade-"
"""Start of each submission's temporary folder's name, followed by the grader's process id."""
_STALE_FOLDER = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_folders(parent: str | Path | None = None) -> list[Path]:
    """Delete the temporary folders that graders killed before they could clean up left in
    ``parent`` (default: the system's temporary folder): those named :data:`FOLDER_PREFIX`
    ``<pid>-…``, owned by this user, whose grader process is gone. The folders removed."""
    parent = Path(tempfile.gettempdir() if parent is None else parent)
    removed = []
    for entry in os.scandir(parent):
        match = _STALE_FOLDER.match(entry.name)
        if (match and entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid()
                and not _alive(int(match.group(1)))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def check_limits(cell_timeout: float, timeout: float, memory_limit_mb: int) -> None:
    """ValueError naming the bad value unless all three limits are positive numbers."""
    for name, value, unit in (("cell_timeout", cell_timeout, "seconds"), ("timeout", timeout, "seconds"),
                              ("memory_limit_mb", memory_limit_mb, "megabytes")):
        if not is_real(value) or not value > 0:
            raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")


def grade_submission(
    path: str | Path,
    *,
    assignment: str | None = None,
    cell_timeout: float = 60,
    timeout: float = 600,
    memory_limit_mb: int = 4096,
    seed: int | None = None,
    student: str | None = None,
    sandboxed: bool = True,
) -> SubmissionGrade:
    """Run the notebook at ``path`` in a fresh kernel and grade it; never raises for a bad submission.

    Args:
        path: the submitted ``.ipynb`` (read, never modified).
        assignment: exercise number to grade it as; default: found in the submission
            (:func:`submission_assignment`), which the learner could have edited.
        cell_timeout: seconds any one cell, or testing one answer, may run.
        timeout: seconds for the whole submission, kernel start included.
        memory_limit_mb: address space the kernel may use beyond a fresh kernel with torch (Linux).
        seed: seed of the random test cases; default a fresh random one.
        student: name to report; default :func:`student_name` of ``path``.
        sandboxed: run the kernel in the sandbox (:class:`~vgcourse.grading.runner.KernelSession`).

    Returns:
        a :class:`SubmissionGrade` whose ``status`` is a key of :data:`~vgcourse.grading.grade.STATUSES`.
    """
    check_limits(cell_timeout, timeout, memory_limit_mb)
    started = time.monotonic()
    path = Path(path)
    grade = SubmissionGrade(student or _name(path), None if assignment is None else
                            normalize_assignment(assignment), path,
                            seed=secrets.randbits(48) if seed is None else seed)
    try:
        nb = read_submission(path)
        grade.assignment = grade.assignment or submission_assignment(nb, path)
        questions = assignment_questions(grade.assignment)
        with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-",
                                         ignore_cleanup_errors=True) as folder:
            session = KernelSession(Path(folder), cell_timeout=cell_timeout, deadline=started + timeout,
                                    memory_limit_mb=memory_limit_mb, sandboxed=sandboxed,
                                    refused=refused_objects(questions))
            with session:
                if _run_cells(nb, questions, session, grade, timeout):
                    for number, question in enumerate(questions):
                        if not _grade_question(session, question, grade, number, timeout):
                            break
    except MalformedSubmission as error:
        grade.note("malformed", str(error))
    except Exception as error:  # a grader failure must not stop the batch; it is reported as such
        grade.note("grader error", f"{type(error).__name__}: {error}")
    if grade.status == "ok" and grade.results and not any(result.answered for result in grade.results):
        grade.status, grade.error = "not attempted", "no question was answered"
    _fill_missing(grade)
    grade.seconds = time.monotonic() - started
    return grade


def _name(path: Path) -> str:
    try:
        return student_name(path)
    except ValueError:  # the batch refuses such names up front; a single grade still gets a row
        return "".join(c for c in path.stem if c.isprintable()) or "student"


def _fill_missing(grade: SubmissionGrade) -> None:
    """Give each question not graded (the run stopped, or never started) 0 points."""
    if grade.assignment is None:
        number = file_number(grade.path)
        grade.assignment = number if number in ASSIGNMENTS else None
    if grade.assignment is not None:
        done = {result.question_id for result in grade.results}
        grade.results += [_zero(q, f"not graded ({grade.status})") for q in assignment_questions(grade.assignment)
                          if q.id not in done]


def _zero(question: Question, why: str) -> Result:
    return Result(question.id, 0, question.points, clean_text(f"✗ {question.id}: {why}", MAX_REASON))


def _stopping(run: CellRun, where: str, timeout: float) -> tuple[str, str] | None:
    """(status, reason) if ``run`` ends the submission's run, else None."""
    if run.outcome == "deadline":
        return "overall timeout", f"the {timeout:g} s time limit for the whole notebook ran out ({where})"
    if run.outcome == "stuck":
        return "timeout", f"{where} {run.error}; nothing after it was run"
    if run.outcome == "lost":
        return "kernel died", f"lost contact with the kernel during {where}: {run.error}"
    if run.outcome == "dead":
        return "kernel died", f"the kernel died during {where} (os._exit, a crash, or out of memory)"
    return None


def refused_objects(questions: list[Question]) -> dict[str, str]:
    """The course objects that answer one of ``questions`` by themselves (their ``answered_by``),
    each with what it says in the grading kernel when an answer calls it."""
    return {dotted: f"{question.id}: {dotted} answers this question by itself, so an answer that uses it "
                    f"earns nothing; write it yourself ({question.task})"
            for question in questions for dotted in question.answer.answered_by}


def _run_cells(nb: NotebookNode, questions: list[Question], session: KernelSession, grade: SubmissionGrade,
               timeout: float) -> bool:
    """Run the learner's imports and answer cells in order; whether grading can go on."""
    for cell in graded_cells(nb, [q.id for q in questions], [q.answer_name for q in questions]):
        run = session.run(cell.source)
        if stop := _stopping(run, cell.where, timeout):
            grade.note(*stop)
            return False
        if run.outcome == "error":
            grade.note("errors", f"{cell.where}: {run.error}")
        elif run.outcome == "timeout":
            grade.note("timeout", f"{cell.where} {run.error}")
    return True


def _exchange_folder(session: KernelSession) -> int:
    """A file descriptor of the session's exchange folder, created if needed; never through a symlink."""
    exchange = session.outputs.parent
    exchange.mkdir(exist_ok=True)
    return os.open(exchange, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def _empty_outputs(folder: int, name: str) -> None:
    """Empty the outputs file ``name`` in ``folder`` (if it is still a regular file), so that
    what the last question left there is never read as this one's."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return  # gone or replaced: reading it will say so
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _write_cases(folder: int, name: str, cases: list) -> None:
    """Save ``cases`` as a new file ``name`` in ``folder``: never through a planted symlink or file."""
    with os.fdopen(create_file(folder, name), "wb") as file:
        torch.save(cases, file)


def _read_results(folder: int, name: str) -> bytes | str:
    """The bytes of the regular file ``name`` in ``folder`` (at most :data:`MAX_RESULTS_BYTES`,
    :func:`~vgcourse.grading.files.read_regular`), or why it cannot be read."""
    try:
        data = read_regular(name, MAX_RESULTS_BYTES, dir_fd=folder)
    except FileNotFoundError:
        return "the kernel sent no results back"
    except FileRefused as refused:
        if not refused.regular:
            return "the results were not a regular file"
        if refused.size is not None:
            return f"the results were too large ({refused.size / 2**20:.0f} MB)"
        return f"the results were too large (over {MAX_RESULTS_BYTES // 2**20} MB)"
    except OSError as error:  # ELOOP: a symlink
        return f"the results could not be opened ({error.strerror or error})"
    return data or "the kernel sent no results back"


def _grade_question(session: KernelSession, question: Question, grade: SubmissionGrade, number: int,
                    timeout: float) -> bool:
    """Test the answer to ``question`` in the kernel, score it here, add the result; whether to go on."""
    cases = question.cases(torch.Generator().manual_seed(grade.seed + number))
    try:
        folder = _exchange_folder(session)
    except OSError as error:  # the kernel replaced it with a symlink or a file: the submission's doing
        grade.note("errors", f"testing {question.id}: the grader's exchange folder was replaced ({error.strerror})")
        grade.results.append(_zero(question, "the answer could not be tested: the notebook tampered with "
                                             "the grader's folder"))
        return True
    try:
        # a fresh random name: a file an unsandboxed kernel planted under a name it guessed is never used
        cases_name = f"{question.id}.{secrets.token_hex(8)}.cases.pt"
        _write_cases(folder, cases_name, [public_case(question, case) for case in cases])
        _empty_outputs(folder, session.outputs.name)
        run = session.run("from vgcourse.grading.kernel import answer_cases as _vgcourse_answer_cases\n"
                          f"_vgcourse_answer_cases({question.id!r}, globals(), "
                          f"{str(session.outputs.parent / cases_name)!r}, {str(session.outputs)!r})", history=False)
        where = f"testing {question.id}"
        if stop := _stopping(run, where, timeout):
            grade.note(*stop)
            return False
        if run.outcome == "timeout":
            grade.note("timeout", f"{where} {run.error}")
            result = _zero(question, f"calling `{question.answer_name}` on the tests {run.error} (an infinite loop?)")
        elif run.outcome == "error":
            grade.note("errors", f"{where}: {run.error}")
            result = _zero(question, f"the answer could not be tested ({run.error})")
        else:
            result = _score_outputs(question, cases, _read_results(folder, session.outputs.name))
    finally:
        os.close(folder)
    grade.results.append(result)
    return True


def _score_outputs(question: Question, cases: list, data: bytes | str) -> Result:
    """Score the outputs the kernel saved (``data``, or why it could not be read) against the
    grader's own reference. Any exception, RecursionError included, costs this question only."""
    if isinstance(data, str):
        return _zero(question, data)
    try:
        data = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # never unpickle objects
    except Exception as error:  # a damaged or hostile file
        return _zero(question, f"the results could not be read ({type(error).__name__})")
    try:
        if isinstance(data, dict) and set(data) == {MISSING}:
            return _zero(question, f"`{question.answer_name}` is not defined in the notebook. Task: {question.task}")
        if not isinstance(data, dict) or set(data) != {"outputs"}:
            return _zero(question, "the answer's results could not be read")
        return score(question, cases, data["outputs"])
    except Exception as error:  # e.g. RecursionError on absurdly nested data
        return _zero(question, f"the answer's results could not be scored ({type(error).__name__})")
