"""``vgcourse grade``: grade many submissions into a CSV and a feedback file per student.

Each submission is graded by :func:`~vgcourse.grading.submission.grade_submission` in its own
fresh kernel, so one broken notebook costs only its own points. This module runs the batch,
writes the report and provides the command line.
"""

from __future__ import annotations

import argparse
import csv
import glob
import re
import sys
import textwrap
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Sequence

from tqdm.auto import tqdm

from vgcourse.grading.registry import QUESTIONS
from vgcourse.grading.statistics import (
    open_report, question_statistics, statistics_figure, write_gradebook, write_question_statistics,
)
from vgcourse.grading.submission import (
    STATUSES, SubmissionGrade, check_limits, grade_submission, normalize_assignment, student_name,
)

__all__ = ["STATUSES", "SubmissionGrade", "add_arguments", "check_jobs", "check_submission_paths", "feedback_paths",
           "feedback_text", "report_paths",
           "grade_submission", "grade_submissions", "run_command", "student_names", "summary_line",
           "write_feedback", "write_scores"]

CSV_FORMULA_START = ("=", "+", "-", "@")


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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of parallel gradings, got {jobs!r}")
    return jobs


def grade_submissions(
    paths: Iterable[str | Path],
    *,
    assignment: str | None = None,
    cell_timeout: float = 60,
    timeout: float = 600,
    memory_limit_mb: int = 4096,
    progress: bool = True,
    jobs: int = 1,
) -> list[SubmissionGrade]:
    """Grade each notebook in ``paths`` in its own fresh kernel; the grades in the order given.

    Arguments are checked before anything runs (ValueError naming the bad one); after that a
    broken submission only affects its own grade. See :func:`grade_submission` for the limits.
    ``jobs`` submissions are graded at a time, each in a grader process of its own (one per
    core is the most that helps; ``benchmarks/grading_jobs.py`` measures it). ``progress``
    shows a progress bar (``tqdm.auto``).
    """
    paths = check_submission_paths(paths)
    check_limits(cell_timeout, timeout, memory_limit_mb)
    jobs = check_jobs(jobs)
    assignment = None if assignment is None else normalize_assignment(assignment)
    options = dict(assignment=assignment, cell_timeout=cell_timeout, timeout=timeout, memory_limit_mb=memory_limit_mb)
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


# ---- the report --------------------------------------------------------------------------------


def _csv_text(text: str) -> str:
    """One line, at most 300 characters, and never read as a formula by a spreadsheet."""
    text = " ".join(str(text).split())
    text = text if len(text) <= 300 else text[:299] + "…"
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


SCORE_COLUMNS = ("total", "max", "status", "error")
"""The CSV's last columns; ``student`` comes first and the questions in between."""


def _score_row(grade: SubmissionGrade) -> dict[str, object]:
    row: dict[str, object] = {"student": _csv_text(grade.student)}
    row.update({result.question_id: result.points for result in grade.results})
    row.update(total=grade.total, max=grade.max_points, status=grade.status, error=_csv_text(grade.error))
    return row


def _earlier_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a scores CSV this command wrote before; ValueError for any other file."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            header, rows = reader.fieldnames or [], list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} is not a scores CSV of vgcourse grade ({error}); choose another --out") from None
    if header[:1] != ["student"] or tuple(header[-len(SCORE_COLUMNS):]) != SCORE_COLUMNS:
        raise ValueError(f"{path} is not a scores CSV of vgcourse grade (its header is {header[:3]}…); "
                         "choose another --out")
    return rows


def write_scores(grades: Sequence[SubmissionGrade], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the CSV: ``student``, one column per question (course order), ``total``, ``max``,
    ``status``, ``error``. A question outside a student's exercise is left empty.

    With ``overwrite``, an existing CSV is *updated*: the students graded now get their new row
    (in its old place; new students at the end) and every other student's row stays as it was.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
        ValueError: if ``overwrite`` is true and ``path`` is not a CSV this function wrote.
    """
    path = Path(path)
    rows = [_score_row(grade) for grade in grades]
    if overwrite and path.exists():
        now = {row["student"]: row for row in rows}
        earlier = _earlier_rows(path)
        kept = [now.pop(old["student"]) if old["student"] in now else old for old in earlier]
        rows = kept + [row for row in rows if row["student"] in now]
    present = {key for row in rows for key in row if key != "student" and key not in SCORE_COLUMNS}
    ids = [qid for qid in QUESTIONS if qid in present] + sorted(present - set(QUESTIONS))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_report(path, overwrite) as file:
        writer = csv.DictWriter(file, ["student", *ids, *SCORE_COLUMNS], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def feedback_paths(grades: Sequence[SubmissionGrade] | Sequence[str], directory: str | Path) -> list[Path]:
    """Where each student's feedback goes: ``directory/<student>.txt``, made safe and unique."""
    paths: list[Path] = []
    taken: set[str] = set()
    for grade in grades:
        student = grade if isinstance(grade, str) else grade.student
        base = name = re.sub(r"[^\w.-]+", "_", student).strip("._") or "student"
        count = 1
        while name.lower() in taken:  # case-insensitive file systems
            count += 1
            name = f"{base}-{count}"
        taken.add(name.lower())
        paths.append(Path(directory) / f"{name}.txt")
    return paths


def feedback_text(grade: SubmissionGrade) -> str:
    """The feedback for one student: score, status, each question's ✓/✗ message, the problems."""
    exercise = f"exercise {grade.assignment}" if grade.assignment else "unknown exercise"
    lines = [f"Feedback for {grade.student}: {exercise}", f"Submission: {grade.path}",
             f"Score: {grade.total} / {grade.max_points} points",
             f"Status: {grade.status}" + (f" — {grade.error}" if grade.error else ""),
             f"  ({STATUSES[grade.status]})", ""]
    lines += [result.message for result in grade.results] or ["No question could be graded."]
    if grade.problems and grade.problems != [grade.error]:  # more than the status line says
        lines += ["", "Problems while running the notebook:"] + [f"- {problem}" for problem in grade.problems]
    tests = "" if grade.status == "malformed" else f"; random tests drawn with seed {grade.seed}"
    lines += ["", f"Graded by `vgcourse grade` in {grade.seconds:.1f} s{tests}."]
    return "\n".join(lines) + "\n"


def write_feedback(grades: Sequence[SubmissionGrade], directory: str | Path, *,
                   overwrite: bool = False) -> list[Path]:
    """Write :func:`feedback_text` for every grade to ``directory/<student>.txt``; the paths.

    Raises:
        FileExistsError: if any of those files exists and ``overwrite`` is false (nothing is written).
    """
    paths = feedback_paths(grades, directory)
    existing = [str(path) for path in paths if path.exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise FileExistsError(f"feedback already exists: {shown}; choose another --feedback or pass --overwrite")
    Path(directory).mkdir(parents=True, exist_ok=True)
    for grade, path in zip(grades, paths):
        with open_report(path, overwrite) as file:
            file.write(feedback_text(grade))
    return paths


def summary_line(grades: Sequence[SubmissionGrade], out: str | Path) -> str:
    """``Graded 12 submissions (exercise 03): 10 ok, 1 timeout, 1 malformed; mean 7.5 / 10 points → scores.csv``."""
    exercises = sorted({grade.assignment for grade in grades if grade.assignment})
    which = (f" (exercise {exercises[0]})" if len(exercises) == 1 else
             f" (exercises {', '.join(exercises)})" if exercises else "")
    counts = Counter(grade.status for grade in grades)
    statuses = ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])
    total, possible = sum(g.total for g in grades), sum(g.max_points for g in grades)
    if len(exercises) == 1:
        mean = f"mean {total / len(grades):.3g} / {max(g.max_points for g in grades)} points"
    else:
        mean = f"{100 * total / possible:.0f}% of all points" if possible else "no points to grade"
    noun = "submission" if len(grades) == 1 else "submissions"
    return f"Graded {len(grades)} {noun}{which}: {statuses}; {mean} → {out}"


# ---- the command line --------------------------------------------------------------------------

_EPILOG = """\
Each submission runs in its own fresh python3 kernel, in an empty temporary folder, on the CPU,
with its memory capped; the submitted file is never modified. The questions, points, random tests and reference
answers come from this installation of vgcourse, never from the submission: editing the check
cells or patching vgcourse inside the notebook changes nothing.

exercise:  --assignment if given, else the notebook's metadata, else an NN_ prefix of the file
           name, else the question ids in its cells. A learner can edit the metadata, so pass
           --assignment when grading one exercise.
student:   the file name without .ipynb (submissions/alice.ipynb -> alice), or the folder's name
           when the file keeps the handed-out name (submissions/alice/01_derivative_bounds.ipynb
           -> alice). Repeated names get -2, -3, ...
input:     notebooks, folders (every notebook below them, hidden folders such as
           .ipynb_checkpoints left out) or quoted patterns: vgcourse grade submissions/ ...
output:    the CSV (student, one column per question, total, max, status, error), a
           <student>.txt with each question's feedback, per-question statistics
           (<out>-questions.csv and a figure, <out>-questions.png) and a grade book for an LMS
           (<out>-gradebook.csv: identifier, percentage). Existing files are never replaced
           without --overwrite; with it, re-grading some students updates their rows and
           feedback and keeps everyone else's.

status (the CSV's error column gives the reason):
""" + "\n".join(textwrap.fill(meaning, 100, initial_indent=f"  {status:<16} ", subsequent_indent=" " * 19)
                for status, meaning in STATUSES.items()) + """

Exit status: 0 when every submission was graded (whatever its score or status), 1 if the grader
itself failed on one ('grader error'), 2 for bad arguments or outputs that already exist.
Submissions run with your permissions: use a container or a separate user for untrusted ones.
"""


def _positive(kind: type, unit: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text!r}")
        return value
    return parse


def _assignment(text: str) -> str:
    try:
        return normalize_assignment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vgcourse grade``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("submissions", nargs="+", metavar="SUBMISSION", type=str,
                        help="the notebooks to grade: files, folders (every notebook below them) or quoted patterns")
    parser.add_argument("--out", required=True, type=Path, metavar="SCORES.csv", help="the CSV to write")
    parser.add_argument("--feedback", type=Path, metavar="DIR",
                        help="folder for one <student>.txt each (default: next to the CSV, e.g. scores-feedback/)")
    parser.add_argument("--assignment", type=_assignment, metavar="NN", help="grade every submission as exercise NN")
    parser.add_argument("--cell-timeout", type=_positive(float, "seconds"), default=60.0, metavar="SECONDS",
                        help="time any one cell, or testing one answer, may take (default: 60)")
    parser.add_argument("--timeout", type=_positive(float, "seconds"), default=600.0, metavar="SECONDS",
                        help="time one whole submission may take, kernel start included (default: 600)")
    parser.add_argument("--memory-limit", type=_positive(int, "megabytes"), default=4096, metavar="MB",
                        help="memory a kernel may use beyond a fresh one with torch (Linux; default: 4096)")
    parser.add_argument("--jobs", type=_positive(int, "parallel gradings"), default=1, metavar="N",
                        help="grade N submissions at a time (at most one per core helps; default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-grade into an existing CSV: the students graded now get new rows and feedback "
                             "files; every other student's row stays")


def report_paths(out: Path) -> dict[str, Path]:
    """The files written beside the scores CSV ``out``: per-question statistics (CSV and figure)
    and the LMS grade book."""
    return {"questions": out.with_name(out.stem + "-questions.csv"),
            "figure": out.with_name(out.stem + "-questions.png"),
            "gradebook": out.with_name(out.stem + "-gradebook.csv")}


def _write_reports(grades: Sequence[SubmissionGrade], out: Path, overwrite: bool) -> dict[str, Path]:
    paths = report_paths(out)
    stats = question_statistics(grades)
    write_question_statistics(stats, paths["questions"], overwrite=overwrite)
    if stats:
        with open_report(paths["figure"], overwrite, binary=True) as file:
            statistics_figure(stats).savefig(file, format="png", dpi=100)
    write_gradebook(out, paths["gradebook"], overwrite=overwrite)
    for s in stats:
        reason = f"; most common problem ({s.common_failure_count}): {s.common_failure[:90]}" if s.common_failure else ""
        print(f"  {s.question_id:<28} mean {s.mean_points:.2g} / {s.max_points}, full marks {s.full_marks:.0%}{reason}")
    return paths


def run_command(args: argparse.Namespace) -> int:
    """Grade ``args.submissions``, write the CSV, feedback and reports, print a summary; the exit status."""
    feedback = args.feedback or args.out.with_name(args.out.stem + "-feedback")
    try:
        paths = check_submission_paths(args.submissions)
        if args.out.is_dir():
            raise ValueError(f"--out {args.out} is a folder; give the CSV's file name")
        if feedback.exists() and not feedback.is_dir():
            raise ValueError(f"--feedback {feedback} is a file, not a folder")
        if args.overwrite and args.out.exists():
            _earlier_rows(args.out)  # a file that is not our CSV is refused before anything is graded
        existing = [path for path in (args.out, *report_paths(args.out).values()) if path.exists()]
        existing += [path for path in feedback_paths(student_names(paths), feedback) if path.exists()]
        if existing and not args.overwrite:
            shown = ", ".join(map(str, existing[:3])) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
            raise ValueError(f"{shown} already exist{'s' if len(existing) == 1 else ''}; "
                             "nothing was graded. Choose another --out/--feedback or pass --overwrite")
    except ValueError as error:
        print(f"vgcourse grade: error: {error}", file=sys.stderr)
        return 2
    try:
        grades = grade_submissions(paths, assignment=args.assignment, cell_timeout=args.cell_timeout,
                                   timeout=args.timeout, memory_limit_mb=args.memory_limit, jobs=args.jobs)
    except KeyboardInterrupt:
        print("vgcourse grade: interrupted; nothing was written", file=sys.stderr)
        return 130
    try:
        write_scores(grades, args.out, overwrite=args.overwrite)
        write_feedback(grades, feedback, overwrite=args.overwrite)
        print(summary_line(grades, args.out))
        print("Per question, over the submissions graded now:")
        reports = _write_reports(grades, args.out, args.overwrite)
    except (FileExistsError, ValueError) as error:  # created or replaced by someone else while grading
        print(f"vgcourse grade: error: {error}", file=sys.stderr)
        return 2
    print(f"Feedback for each student: {feedback}{'/' if not str(feedback).endswith('/') else ''}")
    print(f"Statistics: {reports['questions']} and {reports['figure']}; "
          f"for the LMS (identifier, percentage; the whole CSV): {reports['gradebook']}")
    failed = [grade.student for grade in grades if grade.status == "grader error"]
    if failed:
        print(f"vgcourse grade: the grader failed on {', '.join(failed)} (see the error column); "
              "fix the cause and grade those again", file=sys.stderr)
        return 1
    return 0
