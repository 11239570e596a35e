"""The batch's report: the scores CSV, a feedback file per student and the summary line.

Per-question statistics and the LMS grade book, written from the same grades, are in
:mod:`vgcourse.grading.statistics`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from vgcourse.grading.grade import STATUSES, SubmissionGrade
from vgcourse.grading.registry import QUESTIONS
from vgcourse.grading.statistics import open_report

CSV_FORMULA_START = ("=", "+", "-", "@")


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


def read_scores(path: Path) -> list[dict[str, str]]:
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
        earlier = read_scores(path)
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


def report_paths(out: Path) -> dict[str, Path]:
    """The files written beside the scores CSV ``out``: per-question statistics (CSV and figure)
    and the LMS grade book."""
    return {"questions": out.with_name(out.stem + "-questions.csv"),
            "figure": out.with_name(out.stem + "-questions.png"),
            "gradebook": out.with_name(out.stem + "-gradebook.csv")}
