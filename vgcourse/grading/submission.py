"""Grading one submitted notebook: read it, tell which exercise it is, run it, score it.

The submission runs in a fresh kernel (:class:`~vgcourse.grading.runner.KernelSession`). The
questions, their points, the random test cases, the reference answers and the comparison all
come from the grader's own process and registry; the kernel only calls the learner's answers
on the cases (:func:`vgcourse.grading.kernel.answer_cases`) and hands back plain data, read with
``torch.load(weights_only=True)``. So editing the check cells, redefining ``check`` or patching
``vgcourse.grading`` inside the submission changes nothing but that submission's own outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
import nbformat.reader
import torch
from nbformat import NotebookNode

from vgcourse.grading.kernel import MISSING
from vgcourse.grading.question import QUESTION_ID, Question, Result, score
from vgcourse.grading.registry import ASSIGNMENTS, assignment_questions
from vgcourse.grading.runner import CellRun, KernelSession

STATUSES: dict[str, str] = {
    "ok": "every cell ran without an exception",
    "not attempted": "every cell ran, and every answer still raises NotImplementedError as handed out: "
                     "nothing was answered",
    "errors": "some cells raised exceptions; the other cells still ran and every question was graded",
    "timeout": "a cell, or testing an answer, ran past the per-cell time limit and was interrupted; "
               "the rest still ran and was graded, unless the cell ignored the interrupt "
               "(then the questions not graded yet score 0)",
    "overall timeout": "the notebook used up its total time limit; questions not graded by then score 0",
    "kernel died": "the kernel exited, crashed or stopped answering (os._exit, a segfault, killed by the "
                   "operating system); questions not graded by then score 0",
    "malformed": "not a readable notebook, or not recognisably one of the exercises; nothing was run",
    "grader error": "the grader itself failed (for example the kernel would not start): not the "
                    "learner's fault; fix the cause and grade again",
}
"""Every submission status, from least to most serious, with what it means."""

MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_RESULTS_BYTES = 64 * 2**20
EXERCISE_FILE = re.compile(r"^(\d\d)_[a-z0-9_]+$")
"""The stem of a handed-out exercise file, like ``01_derivative_bounds``."""


class MalformedSubmission(ValueError):
    """The file cannot be graded; the message says why, for the learner."""


@dataclass
class SubmissionGrade:
    """The grade of one submission.

    Attributes:
        student: who submitted it (see :func:`student_name`).
        assignment: the exercise number it was graded as, or ``None`` if that is unknown.
        path: the submitted file (never modified).
        results: one :class:`~vgcourse.grading.question.Result` per question, in order.
        status: a key of :data:`STATUSES`.
        error: the reason for ``status`` in one line; empty when the status is ``ok``.
        problems: everything that went wrong while running the notebook, in order.
        seconds: wall-clock time spent grading it.
        seed: the seed of the random test cases (question ``i`` uses ``seed + i``).
    """

    student: str
    assignment: str | None
    path: Path
    results: list[Result] = field(default_factory=list)
    status: str = "ok"
    error: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0

    @property
    def total(self) -> int:
        return sum(result.points for result in self.results)

    @property
    def max_points(self) -> int:
        return sum(result.max_points for result in self.results)

    def note(self, status: str, reason: str) -> None:
        """Record a problem; the most serious status (first reason among equals) wins."""
        self.problems.append(reason)
        if list(STATUSES).index(status) > list(STATUSES).index(self.status):
            self.status, self.error = status, reason


def student_name(path: str | Path) -> str:
    """The file's stem, or its folder's name when the stem is an exercise's own name.

    ``submissions/alice.ipynb`` and ``submissions/alice/01_derivative_bounds.ipynb`` are both
    ``alice``: a stem of two digits, ``_`` and lowercase words is taken to be the handed-out name.
    """
    path = Path(path)
    if EXERCISE_FILE.match(path.stem):
        return path.resolve().parent.name or path.stem
    return path.stem


def normalize_assignment(assignment: str | int) -> str:
    """``"03"`` from ``3``, ``"3"``, ``"03"`` or ``"ex03"``; ValueError unless it has questions."""
    text = str(assignment).strip().lower().removeprefix("ex")
    nn = text.zfill(2) if text.isdigit() else text
    if nn not in ASSIGNMENTS:
        raise ValueError(f"unknown exercise {assignment!r}; choose one of {list(ASSIGNMENTS)}")
    return nn


def read_submission(path: str | Path) -> NotebookNode:
    """The notebook at ``path`` (version 4, validated).

    Raises:
        MalformedSubmission: for an unreadable, empty, oversized, non-JSON or invalid file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise MalformedSubmission(f"the file is {size / 2**20:.0f} MB; notebooks over "
                                      f"{MAX_NOTEBOOK_BYTES // 2**20} MB are not graded")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MalformedSubmission("the file is not UTF-8 text, so it is not a notebook") from None
    except OSError as error:
        raise MalformedSubmission(f"the file cannot be read ({error.strerror or error})") from None
    if not text.strip():
        raise MalformedSubmission("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedSubmission(f"the file is not valid JSON (line {error.lineno}: {error.msg}), "
                                  "so it is not a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise MalformedSubmission("the file is JSON but not a notebook (it has no 'nbformat' field)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. cells without ids, written by older Jupyter versions
        try:
            nb = nbformat.convert(nbformat.reader.reads(text), 4)
            nbformat.validate(nb)
        except Exception as error:  # nbformat raises many kinds for many kinds of damage
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise MalformedSubmission(f"the file is not a valid notebook ({first[:200]})") from None
    return nb


def submission_assignment(nb: NotebookNode, path: str | Path) -> str:
    """The exercise number of a submission: from its metadata, else its file name's ``NN_``
    prefix, else the question ids in its cells.

    Raises:
        MalformedSubmission: if none of them names an exercise with graded questions.
    """
    meta = nb.metadata.get("vgcourse")
    if isinstance(meta, dict) and "assignment" in meta:
        found, source = str(meta["assignment"]), "the notebook's metadata"
    elif match := re.match(r"^(\d\d)_", Path(path).name):
        found, source = match.group(1), "the file name"
    else:
        ids = set()
        for cell in nb.cells:
            cell_meta = cell.get("metadata", {}).get("vgcourse")
            if isinstance(cell_meta, dict) and (match := QUESTION_ID.match(str(cell_meta.get("question", "")))):
                ids.add(match.group(1))
        if len(ids) != 1:
            raise MalformedSubmission("cannot tell which exercise this is; pass --assignment")
        found, source = ids.pop(), "the question ids in its cells"
    if found not in ASSIGNMENTS:
        raise MalformedSubmission(f"{source} names exercise {found!r}, which has no graded questions; "
                                  "pass --assignment")
    return found


def check_limits(cell_timeout: float, timeout: float, memory_limit_mb: int) -> None:
    """ValueError naming the bad value unless all three limits are positive numbers."""
    for name, value, unit in (("cell_timeout", cell_timeout, "seconds"), ("timeout", timeout, "seconds"),
                              ("memory_limit_mb", memory_limit_mb, "megabytes")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
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

    Returns:
        a :class:`SubmissionGrade` whose ``status`` is a key of :data:`STATUSES`.
    """
    check_limits(cell_timeout, timeout, memory_limit_mb)
    started = time.monotonic()
    path = Path(path)
    grade = SubmissionGrade(student or student_name(path), None if assignment is None else
                            normalize_assignment(assignment), path,
                            seed=secrets.randbits(48) if seed is None else seed)
    try:
        nb = read_submission(path)
        grade.assignment = grade.assignment or submission_assignment(nb, path)
        questions = assignment_questions(grade.assignment)
        with tempfile.TemporaryDirectory(prefix="vgcourse-grade-", ignore_cleanup_errors=True) as folder:
            session = KernelSession(Path(folder), cell_timeout=cell_timeout, deadline=started + timeout,
                                    memory_limit_mb=memory_limit_mb)
            with session:
                if _run_cells(nb, session, grade, timeout):
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


def _fill_missing(grade: SubmissionGrade) -> None:
    """Give each question not graded (the run stopped, or never started) 0 points."""
    if grade.assignment is None:
        match = re.match(r"^(\d\d)_", grade.path.name)
        grade.assignment = match.group(1) if match and match.group(1) in ASSIGNMENTS else None
    if grade.assignment is not None:
        done = {result.question_id for result in grade.results}
        grade.results += [_zero(q, f"not graded ({grade.status})") for q in assignment_questions(grade.assignment)
                          if q.id not in done]


def _zero(question: Question, why: str) -> Result:
    return Result(question.id, 0, question.points, f"✗ {question.id}: {why}")


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


def _run_cells(nb: NotebookNode, session: KernelSession, grade: SubmissionGrade, timeout: float) -> bool:
    """Run the learner's code cells in order; whether grading can go on."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        where = f"cell {index + 1}"
        run = session.run(cell.source)
        if stop := _stopping(run, where, timeout):
            grade.note(*stop)
            return False
        if run.outcome == "error":
            grade.note("errors", f"{where}: {run.error}")
        elif run.outcome == "timeout":
            grade.note("timeout", f"{where} {run.error}")
    return True


def _grade_question(session: KernelSession, question: Question, grade: SubmissionGrade, number: int,
                    timeout: float) -> bool:
    """Test the answer to ``question`` in the kernel, score it here, add the result; whether to go on."""
    cases = question.cases(torch.Generator().manual_seed(grade.seed + number))
    exchange = session.folder / "exchange"
    exchange.mkdir(exist_ok=True)
    cases_path, outputs_path = exchange / f"{question.id}.cases.pt", exchange / f"{question.id}.outputs.pt"
    torch.save(cases, cases_path)
    run = session.run("from vgcourse.grading.kernel import answer_cases as _vgcourse_answer_cases\n"
                      f"_vgcourse_answer_cases({question.id!r}, globals(), {str(cases_path)!r}, "
                      f"{str(outputs_path)!r})", history=False)
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
        result = _score_outputs(question, cases, outputs_path)
    grade.results.append(result)
    return True


def _score_outputs(question: Question, cases: list, path: Path) -> Result:
    """Score the outputs the kernel saved at ``path`` against the grader's own reference."""
    try:
        size = path.stat().st_size
    except OSError:
        return _zero(question, "the kernel sent no results back")
    if size > MAX_RESULTS_BYTES:
        return _zero(question, f"the results were too large ({size / 2**20:.0f} MB)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as error:  # a damaged or hostile file
        return _zero(question, f"the results could not be read ({type(error).__name__})")
    if isinstance(data, dict) and set(data) == {MISSING}:
        return _zero(question, f"`{question.answer_name}` is not defined in the notebook. Task: {question.task}")
    if not isinstance(data, dict) or set(data) != {"outputs"}:
        return _zero(question, "the answer's results could not be read")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # some comparisons report what they measured
        result = score(question, cases, data["outputs"])
    extra = printed.getvalue().rstrip()[:2000]
    return replace(result, message=f"{result.message}\n{extra}") if extra else result
