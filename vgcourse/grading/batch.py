"""Grading many submissions: which files, under which student names, and the grading itself.

Each submission is graded by :func:`~vgcourse.grading.submission.grade_submission` in its own
fresh kernel, so one broken notebook costs only its own points. The CSV and feedback are written
by :mod:`vgcourse.grading.report`; the command line is :mod:`vgcourse.grading.command`.
"""

from __future__ import annotations

import glob
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Sequence

from tqdm.auto import tqdm

from vgcourse.grading.grade import SubmissionGrade
from vgcourse.grading.submission import check_limits, grade_submission
from vgcourse.grading.submission_file import normalize_assignment, student_name
from vgcourse.validation import check_int

GLOB_CHARACTERS = ("*", "?", "[")


def _notebooks_in(folder: Path) -> list[Path]:
    """Every ``.ipynb`` below ``folder``, sorted, leaving out hidden files and folders
    (``.ipynb_checkpoints``: JupyterLab's autosaves are not submissions)."""
    found = [path for path in folder.rglob("*.ipynb")
             if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)]
    return sorted(found)


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        found = _notebooks_in(path)
        if not found:
            raise ValueError(f"{path} is a folder with no notebooks in it")
        return found
    if not path.exists() and any(c in str(path) for c in GLOB_CHARACTERS):  # a pattern the shell did not expand
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not found:
            raise ValueError(f"{path} matches no files")
        return [f for p in found for f in (_notebooks_in(p) if p.is_dir() else [p])]
    return [path]


def check_submission_paths(paths: Iterable[str | Path]) -> list[Path]:
    """``paths`` as notebook Paths, duplicates dropped.

    A folder stands for every notebook below it (``submissions/`` holding
    ``submissions/<student>/03_detection.ipynb``), and a quoted pattern such as
    ``'submissions/*/03_*.ipynb'`` for the files it matches. ValueError for none, a missing file,
    an empty folder or a non-.ipynb.
    """
    checked: list[Path] = []
    seen: set[Path] = set()
    for path in (found for given in map(Path, paths) for found in _expand(given)):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
        if path.suffix != ".ipynb":
            raise ValueError(f"{path} is not a notebook; submissions are .ipynb files")
        if path.resolve() not in seen:
            seen.add(path.resolve())
            checked.append(path)
    if not checked:
        raise ValueError("no submissions given")
    return checked


def student_names(paths: Sequence[str | Path]) -> list[str]:
    """:func:`student_name` of each path, made unique with ``-2``, ``-3``… in the order given."""
    names: list[str] = []
    for path in paths:
        base = name = student_name(path)
        count = 1
        while name in names:
            count += 1
            name = f"{base}-{count}"
        names.append(name)
    return names


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
    sandboxed: bool = True,
) -> list[SubmissionGrade]:
    """Grade each notebook in ``paths`` in its own fresh kernel; the grades in the order given.

    Arguments are checked before anything runs (ValueError naming the bad one); after that a
    broken submission only affects its own grade. See :func:`grade_submission` for the limits.
    ``jobs`` submissions are graded at a time, each in a grader process of its own (one per
    core is the most that helps; ``benchmarks/grading_jobs.py`` measures it). ``progress``
    shows a progress bar (``tqdm.auto``). ``sandboxed`` runs each kernel in the sandbox
    (:mod:`vgcourse.grading.sandbox`).
    """
    paths = check_submission_paths(paths)
    check_limits(cell_timeout, timeout, memory_limit_mb)
    jobs = check_jobs(jobs)
    assignment = None if assignment is None else normalize_assignment(assignment)
    options = dict(assignment=assignment, cell_timeout=cell_timeout, timeout=timeout, memory_limit_mb=memory_limit_mb,
                   sandboxed=sandboxed)
    students = student_names(paths)
    with tqdm(total=len(paths), desc="Grading", unit="notebook", disable=not progress) as bar:
        if jobs == 1:
            grades = []
            for path, student in zip(paths, students):
                bar.set_postfix_str("".join(c if c.isprintable() else "?" for c in student))
                grades.append(grade_submission(path, student=student, **options))
                bar.update()
            return grades
        # spawn, not fork: a forked grader would share the parent's event loops and sockets.
        with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(grade_submission, path, student=student, **options)
                       for path, student in zip(paths, students)]
            try:
                for _ in as_completed(futures):
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            return [future.result() for future in futures]
