"""The batch's report: the scores CSV, a feedback file per student and the summary line.

Per-question statistics and the LMS grade book, written from the same grades, are in
:mod:`vgcourse.grading.statistics`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Sequence

from vgcourse.grading.grade import STATUSES, SubmissionGrade, clean_text
from vgcourse.grading.registry import QUESTIONS
from vgcourse.grading.files import FileRefused, open_folder, read_regular, replace_file

MAX_MESSAGE = 4000
"""Characters of one question's message kept in a feedback file."""

MAX_PROBLEMS = 20
"""Problems listed in a feedback file at most (the CSV's error column has the worst)."""

CSV_FORMULA_START = ("=", "+", "-", "@")


def _csv_text(text: str, redact: bool = True) -> str:
    """One line, at most 300 characters, and never read as a formula by a spreadsheet."""
    text = clean_text(text, 300, lines=False, redact=redact)
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


SCORE_COLUMNS = ("total", "max", "status", "error")
"""The CSV's last columns; ``student`` comes first and the questions in between."""


def _score_row(grade: SubmissionGrade) -> dict[str, object]:
    row: dict[str, object] = {"student": _csv_text(grade.student, redact=False)}
    row.update({result.question_id: result.points for result in grade.results})
    row.update(total=grade.total, max=grade.max_points, status=grade.status, error=_csv_text(grade.error))
    return row


def read_scores(path: Path) -> list[dict[str, str]]:
    """The rows of a scores CSV this command wrote before; ValueError for any other file."""
    try:
        data = read_regular(path)
    except FileRefused:
        raise ValueError(f"{path} is not a regular file; choose another --out") from None
    except OSError as error:
        raise ValueError(f"{path} cannot be read as a scores CSV ({error.strerror or error}; a symlink?); "
                         "choose another --out") from None
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        header, rows = reader.fieldnames or [], list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} is not a scores CSV of vgcourse grade ({error}); choose another --out") from None
    if header[:1] != ["student"] or tuple(header[-len(SCORE_COLUMNS):]) != SCORE_COLUMNS:
        raise ValueError(f"{path} is not a scores CSV of vgcourse grade (its header is {header[:3]}…); "
                         "choose another --out")
    return rows


def _merged_csv(rows: list[dict[str, object]], earlier: list[dict[str, str]]) -> str:
    """The CSV text of ``earlier`` rows updated by ``rows`` (per student; new students at the end)."""
    now = {row["student"]: row for row in rows}
    kept = [now.pop(old["student"]) if old["student"] in now else old for old in earlier]
    rows = kept + [row for row in rows if row["student"] in now]
    present = {key for row in rows for key in row if key != "student" and key not in SCORE_COLUMNS}
    ids = [qid for qid in QUESTIONS if qid in present] + sorted(present - set(QUESTIONS))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, ["student", *ids, *SCORE_COLUMNS], restval="")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def check_output_file(path: Path, option: str = "--out") -> None:
    """ValueError unless ``path`` is absent or a regular file: a symlink, folder or FIFO there
    could send the report somewhere else or block the grader."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ValueError(f"{option} {path} is a symbolic link; the grader writes only files of its own")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{option} {path} is not a regular file")


class ScoresFile:
    """The scores CSV, written as grading goes: after each :meth:`add` the file on disk holds
    every row graded so far, replaced atomically (a killed grader leaves the rows it finished,
    never half a file). Checked on creation, before anything is graded.

    With ``overwrite``, an existing CSV is *updated*: the students graded now get their new row
    (in its old place; new students at the end) and every other student's row stays as it was,
    so re-running a batch that was killed merges into what it left. New rows follow the order of
    ``students`` when it is given (they may be graded in any order).

    Raises (on creation):
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
        ValueError: if ``path`` is a symlink or not a regular file, or (with ``overwrite``) not a
            CSV this grader wrote.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False, students: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.order = {_csv_text(name, redact=False): index for index, name in enumerate(students)}
        check_output_file(self.path)
        exists = os.path.lexists(self.path)
        if exists and not overwrite:
            raise FileExistsError(f"{self.path} already exists; choose another --out or pass --overwrite")
        self.earlier = read_scores(self.path) if exists else []
        self.rows: list[dict[str, object]] = []
        # the folder as it is now (the instructor's path may go through symlinks); writes go there only
        self.folder = Path(os.path.realpath(self.path.parent))

    def add(self, grade: SubmissionGrade) -> None:
        """Add (or replace) ``grade``'s row and write the file."""
        self.rows.append(_score_row(grade))
        if self.order:  # graded in parallel, rows arrive as they finish: keep the order given
            self.rows.sort(key=lambda row: self.order.get(str(row["student"]), len(self.order)))
        self.write()

    def write(self) -> Path:
        """Write every row so far into place (atomically); the path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open_folder(self.folder) as folder:
            replace_file(folder, self.path.name, _merged_csv(self.rows, self.earlier).encode("utf-8"))
        return self.path


def write_scores(grades: Sequence[SubmissionGrade], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the CSV: ``student``, one column per question (course order), ``total``, ``max``,
    ``status``, ``error``. A question outside a student's exercise is left empty.

    With ``overwrite``, an existing CSV is updated as :class:`ScoresFile` does.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
        ValueError: if ``path`` is a symlink, or ``overwrite`` is true and ``path`` is not a CSV
            this function wrote.
    """
    scores = ScoresFile(path, overwrite=overwrite)
    scores.rows = [_score_row(grade) for grade in grades]
    return scores.write()


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
    student = clean_text(grade.student, 200, lines=False, redact=False)
    path = clean_text(grade.path, 500, lines=False, redact=False)  # the instructor's own path
    lines = [f"Feedback for {student}: {exercise}", f"Submission: {path}",
             f"Score: {grade.total} / {grade.max_points} points",
             f"Status: {grade.status}" + (f" — {clean_text(grade.error, 500, lines=False)}" if grade.error else ""),
             f"  ({STATUSES[grade.status]})", ""]
    # every message line after its first is indented: no learner text can pose as the score line
    lines += [clean_text(result.message, MAX_MESSAGE) for result in grade.results] or ["No question could be graded."]
    if grade.problems and grade.problems != [grade.error]:  # more than the status line says
        shown = [f"- {clean_text(problem, 500, lines=False)}" for problem in grade.problems[:MAX_PROBLEMS]]
        more = len(grade.problems) - MAX_PROBLEMS
        lines += ["", "Problems while running the notebook:"] + shown + ([f"- and {more} more"] if more > 0 else [])
    tests = "" if grade.status == "malformed" else f"; random tests drawn with seed {grade.seed}"
    lines += ["", f"Graded by `vgcourse grade` in {grade.seconds:.1f} s{tests}."]
    return "\n".join(lines) + "\n"


def check_feedback_folder(directory: str | Path) -> None:
    """ValueError unless ``directory`` is absent or a real folder holding only regular files:
    a symlink there could send a student's feedback into another file."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        return
    if directory.is_symlink():
        raise ValueError(f"--feedback {directory} is a symbolic link; give a real folder")
    if not directory.is_dir():
        raise ValueError(f"--feedback {directory} is a file, not a folder")
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False):
            kind = "a symbolic link" if entry.is_symlink() else "not a regular file"
            raise ValueError(f"--feedback {directory} holds {entry.name!r}, which is {kind}; "
                             "the feedback folder may hold only feedback files")


class FeedbackFolder:
    """The feedback folder, one ``<student>.txt`` written (atomically) as each student is graded.

    ``students`` are every name of the batch, so the file names are decided up front
    (:func:`feedback_paths`). Checked on creation, before anything is graded.

    Raises (on creation):
        ValueError: for a symlink or anything but regular files in ``directory``.
        FileExistsError: if a student's file exists and ``overwrite`` is false.
    """

    def __init__(self, directory: str | Path, students: Sequence[str], *, overwrite: bool = False) -> None:
        self.directory = Path(directory)
        check_feedback_folder(self.directory)
        self.folder = Path(os.path.realpath(self.directory))  # where it is now; writes go there only
        self.paths = dict(zip(students, feedback_paths(list(students), self.directory)))
        existing = [str(path) for path in self.paths.values() if os.path.lexists(path)]
        if existing and not overwrite:
            shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
            raise FileExistsError(f"feedback already exists: {shown}; choose another --feedback or pass --overwrite")

    def add(self, grade: SubmissionGrade) -> Path:
        """Write ``grade``'s feedback; its path."""
        if grade.student not in self.paths:  # not named up front: give it a name no one else has
            taken = list(self.paths) + [grade.student]
            self.paths[grade.student] = feedback_paths(taken, self.directory)[-1]
        path = self.paths[grade.student]
        self.folder.mkdir(parents=True, exist_ok=True)
        with open_folder(self.folder) as folder:
            replace_file(folder, path.name, feedback_text(grade).encode("utf-8"))
        return path


def write_feedback(grades: Sequence[SubmissionGrade], directory: str | Path, *,
                   overwrite: bool = False) -> list[Path]:
    """Write :func:`feedback_text` for every grade to ``directory/<student>.txt``; the paths.

    Raises:
        FileExistsError: if any of those files exists and ``overwrite`` is false (nothing is written).
        ValueError: for a symlink or anything but regular files in ``directory``.
    """
    folder = FeedbackFolder(directory, [grade.student for grade in grades], overwrite=overwrite)
    return [folder.add(grade) for grade in grades]


def check_outputs(out: Path, feedback: Path, students: Sequence[str], *, overwrite: bool) -> None:
    """Everything ``vgcourse grade`` will write, checked before anything is graded: ValueError
    for a folder, symlink or non-regular file at ``out`` or beside it, a feedback folder that is
    not a plain folder of files, a file that exists without ``overwrite``, or (with it) an ``out``
    that is not a scores CSV of this grader."""
    if out.is_dir() and not out.is_symlink():
        raise ValueError(f"--out {out} is a folder; give the CSV's file name")
    for path in (out, *report_paths(out).values()):
        check_output_file(path)
    check_feedback_folder(feedback)
    if overwrite and os.path.lexists(out):
        read_scores(out)  # a file that is not our CSV is refused before anything is graded
    existing = [path for path in (out, *report_paths(out).values()) if os.path.lexists(path)]
    existing += [path for path in feedback_paths(list(students), feedback) if os.path.lexists(path)]
    if existing and not overwrite:
        shown = ", ".join(map(str, existing[:3])) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise ValueError(f"{shown} already exist{'s' if len(existing) == 1 else ''}; "
                         "nothing was graded. Choose another --out/--feedback or pass --overwrite")


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


def report_paths(out: Path) -> dict[str, Path]:
    """The files written beside the scores CSV ``out``: per-question statistics (CSV and figure)
    and the LMS grade book."""
    return {"questions": out.with_name(out.stem + "-questions.csv"),
            "figure": out.with_name(out.stem + "-questions.png"),
            "gradebook": out.with_name(out.stem + "-gradebook.csv")}
