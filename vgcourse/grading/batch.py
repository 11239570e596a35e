"""Grading many submissions: which files, under which student names, and the grading itself.

Each submission is graded by :func:`~vgcourse.grading.submission.grade_submission` in its own
fresh kernel, so one broken notebook costs only its own points. The CSV and feedback are written
by :mod:`vgcourse.grading.report`; the command line is :mod:`vgcourse.grading.command`.
"""

from __future__ import annotations

import glob
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm.auto import tqdm

from vgcourse.grading.grade import SubmissionGrade
from vgcourse.grading.question import Result
from vgcourse.grading.registry import assignment_questions
from vgcourse.grading.submission import check_limits, grade_submission, remove_stale_folders
from vgcourse.grading.submission_file import normalize_assignment, student_name
from vgcourse.validation import check_int

GLOB_CHARACTERS = ("*", "?", "[")


def _notebooks_in(folder: Path) -> list[Path]:
    """Every ``.ipynb`` below ``folder``, sorted, leaving out hidden files and folders
    (``.ipynb_checkpoints``: JupyterLab's autosaves are not submissions). A symlinked notebook
    is kept, to be reported (it is graded as malformed); symlinked folders are not entered."""
    found = [path for path in folder.rglob("*.ipynb")
             if (path.is_file() or path.is_symlink())
             and not any(part.startswith(".") for part in path.relative_to(folder).parts)]
    return sorted(found)


def _pattern_root(pattern: str) -> Path:
    """The folder a glob pattern starts from: its parts before the first one with a wildcard."""
    parts = Path(pattern).parts
    fixed = [part for part in parts[:next(i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARACTERS))]]
    return Path(*fixed) if fixed else Path(".")


def _expand(path: Path) -> list[tuple[Path, Path | None]]:
    """The notebooks ``path`` stands for, each with the folder of submissions it was found in."""
    if path.is_dir() and not path.is_symlink():
        found = _notebooks_in(path)
        if not found:
            raise ValueError(f"{path} is a folder with no notebooks in it")
        return [(notebook, path) for notebook in found]
    if not os.path.lexists(path) and any(c in str(path) for c in GLOB_CHARACTERS):  # a pattern the shell did not expand
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not found:
            raise ValueError(f"{path} matches no files")
        root = _pattern_root(str(path))
        return [(f, root) for p in found for f in (_notebooks_in(p) if p.is_dir() and not p.is_symlink() else [p])]
    return [(path, None)]


@dataclass(frozen=True)
class Submission:
    """One notebook to grade, whose it is, and (``note``) why its name is not its own, if so."""

    path: Path
    student: str
    note: str = ""


def find_submissions(paths: Iterable[str | Path]) -> list[Submission]:
    """A :class:`Submission` for each notebook ``paths`` stands for, in order.

    A folder stands for every notebook below it and a quoted pattern such as
    ``'submissions/*/03_*.ipynb'`` for the files it matches; there the student is the folder
    under it the notebook is in, or the file's stem directly in it (``submissions/alice/x.ipynb``
    and ``submissions/alice.ipynb`` are ``alice``, ``submissions/x/z.ipynb`` is ``x``, never
    ``z``). A notebook named directly is named by :func:`student_name`. A file listed twice is
    graded once; a symlinked submission is kept and graded as malformed (it could stand for
    another student's file). Names that two submissions share get ``-2``, ``-3``… in the order
    given, never a name another submission has, and a ``note`` saying so for their feedback.

    Raises:
        ValueError: for none, a missing file, an empty folder, a non-.ipynb, or a name that is
            empty, ``.``/``..`` or holds control or bidi characters.
    """
    found: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for path, root in (item for given in map(Path, paths) for item in _expand(given)):
        if not path.is_file() and not path.is_symlink():
            raise ValueError(f"{path} does not exist")
        if path.suffix != ".ipynb":
            raise ValueError(f"{path} is not a notebook; submissions are .ipynb files")
        if os.path.abspath(path) not in seen:  # the same file, not what it points to: see above
            seen.add(os.path.abspath(path))
            found.append((path, student_name(path, root)))
    if not found:
        raise ValueError("no submissions given")
    first = {}
    for path, name in found:
        first.setdefault(name.casefold(), path)
    return [Submission(path, unique, "" if unique == name else
                       f"another submission ({first[name.casefold()]}) has the name {name!r}; "
                       f"this one ({path}) is reported as {unique!r}")
            for (path, name), unique in zip(found, _unique([name for _, name in found]))]


def _unique(names: Sequence[str]) -> list[str]:
    """``names`` made unique with ``-2``, ``-3``…, skipping every name that is already someone's."""
    taken = {name.casefold() for name in names}
    unique: list[str] = []
    used: set[str] = set()
    for base in names:
        name, count = base, 1
        while name.casefold() in used or (name != base and name.casefold() in taken):
            count += 1
            name = f"{base}-{count}"
        used.add(name.casefold())
        unique.append(name)
    return unique


def check_submission_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The notebooks of :func:`find_submissions`, as Paths."""
    return [submission.path for submission in find_submissions(paths)]


def student_names(paths: Sequence[str | Path]) -> list[str]:
    """:func:`student_name` of each notebook path, made unique as :func:`find_submissions` does."""
    return _unique([student_name(path) for path in paths])


def check_jobs(jobs: object) -> int:
    """``jobs`` as a positive int, or a ValueError saying what is allowed."""
    return check_int(jobs, "jobs", minimum=1)


def grade_submissions(
    paths: Iterable[str | Path],
    *,
    assignment: str | None = None,
    cell_timeout: float = 60,
    timeout: float = 600,
    memory_limit_mb: int = 4096,
    progress: bool = True,
    jobs: int = 1,
    on_graded: Callable[[SubmissionGrade], None] | None = None,
    sandboxed: bool = True,
) -> list[SubmissionGrade]:
    """Grade each notebook in ``paths`` in its own fresh kernel; the grades in the order given.

    Arguments are checked before anything runs (ValueError naming the bad one); after that a
    broken submission only affects its own grade. See :func:`grade_submission` for the limits.
    ``jobs`` submissions are graded at a time, each in a grader process of its own (one per
    core is the most that helps; ``benchmarks/grading_jobs.py`` measures it). ``progress``
    shows a progress bar (``tqdm.auto``). ``on_graded(grade)`` is called as each submission is
    graded (in the order they finish), so its row can be written at once
    (:class:`~vgcourse.grading.report.ScoresFile`). ``sandboxed`` runs each kernel in the sandbox
    (:mod:`vgcourse.grading.sandbox`).
    """
    submissions = find_submissions(paths)
    check_limits(cell_timeout, timeout, memory_limit_mb)
    jobs = check_jobs(jobs)
    assignment = None if assignment is None else normalize_assignment(assignment)
    options = dict(assignment=assignment, cell_timeout=cell_timeout, timeout=timeout, memory_limit_mb=memory_limit_mb,
                   sandboxed=sandboxed)
    paths, students = [s.path for s in submissions], [s.student for s in submissions]
    notes = {s.student: s.note for s in submissions if s.note}
    remove_stale_folders()  # left by a grader that was killed (SIGKILL cannot be cleaned up after)

    def finished(grade: SubmissionGrade) -> SubmissionGrade:
        if grade.student in notes:
            grade.problems.append(notes[grade.student])
        if on_graded is not None:
            on_graded(grade)
        return grade

    with tqdm(total=len(paths), desc="Grading", unit="notebook", disable=not progress) as bar:
        if jobs == 1:
            grades = []
            for path, student in zip(paths, students):
                bar.set_postfix_str("".join(c if c.isprintable() else "?" for c in student))
                grades.append(finished(grade_submission(path, student=student, **options)))
                bar.update()
            return grades
        # spawn, not fork: a forked grader would share the parent's event loops and sockets.
        with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(grade_submission, path, student=student, **options)
                       for path, student in zip(paths, students)]
            graded: dict[int, SubmissionGrade] = {}
            broken: list[int] = []
            try:
                for future in as_completed(futures):
                    index = futures.index(future)
                    try:
                        graded[index] = finished(future.result())
                        bar.update()
                    except BrokenProcessPool:  # a worker died: every unfinished one is graded again, alone
                        broken.append(index)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        for index in sorted(broken):  # alone, so a crash costs only the submission that caused it
            graded[index] = finished(_grade_alone(paths[index], students[index], options))
            bar.update()
        return [graded[index] for index in range(len(paths))]


def _grade_alone(path: Path, student: str, options: dict) -> SubmissionGrade:
    """:func:`grade_submission` in a process of its own; a "grader error" if that process dies."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(grade_submission, path, student=student, **options).result()
        except BrokenProcessPool as error:
            return _failed(path, student, options["assignment"], error)


def _failed(path: Path, student: str, assignment: str | None, error: BaseException) -> SubmissionGrade:
    """The grade of a submission whose grader process failed: every question 0, "grader error"."""
    grade = SubmissionGrade(student, assignment, path)
    grade.note("grader error", f"the grading process died ({type(error).__name__}); grade it again alone")
    if assignment is not None:
        grade.results = [Result(q.id, 0, q.points, f"✗ {q.id}: not graded (grader error)")
                         for q in assignment_questions(assignment)]
    return grade
