"""What an instructor reads after grading a class: per-question statistics, a figure, an LMS file.

The statistics come from the :class:`~vgcourse.grading.submission.SubmissionGrade` s of one
``vgcourse grade`` run (they need the feedback messages); the LMS file from the scores CSV.
``batch.run_command`` writes them all next to the scores CSV.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from vgcourse.grading.files import open_folder, read_regular, replace_file
from vgcourse.grading.grade import clean_text
from vgcourse.grading.registry import QUESTIONS
from vgcourse.grading.submission import SubmissionGrade


@contextmanager
def open_report(path: Path, overwrite: bool, binary: bool = False) -> Iterator[IO]:
    """A buffer for a report at ``path``, written there (atomically, :func:`replace_file`) when the
    block ends: created, or replaced only with ``overwrite``; otherwise a FileExistsError saying
    how to go on. Every file ``vgcourse grade`` writes goes this way."""
    path = Path(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another --out or pass --overwrite")
    buffer = io.BytesIO() if binary else io.StringIO(newline="")
    yield buffer
    data = buffer.getvalue()
    with open_folder(Path(os.path.realpath(path.parent))) as folder:
        try:
            replace_file(folder, path.name, data if binary else data.encode("utf-8"), overwrite=overwrite)
        except FileExistsError:
            raise FileExistsError(f"{path} already exists; choose another --out or pass --overwrite") from None


@dataclass(frozen=True)
class QuestionStatistics:
    """One question over the class: how many were graded on it, mean points, share with full
    marks, and the most common reason for losing points (``""`` when nobody did)."""

    question_id: str
    graded: int
    max_points: int
    mean_points: float
    full_marks: float
    common_failure: str
    common_failure_count: int


def _reason(message: str) -> str:
    """A failure message's first line without the ✗ and question id: what students share."""
    message = clean_text(message, 2000)  # learner text: no escapes reach the terminal or the CSV
    first = message.strip().splitlines()[0] if message.strip() else ""
    first = first.removeprefix("✗").strip()
    head, _, rest = first.partition(": ")
    return rest if head.startswith("ex") and rest else first


def question_statistics(grades: Sequence[SubmissionGrade]) -> list[QuestionStatistics]:
    """One :class:`QuestionStatistics` per question that appears in ``grades``, in course order."""
    results: dict[str, list] = {}
    for grade in grades:
        for result in grade.results:
            results.setdefault(result.question_id, []).append(result)
    ordered = [qid for qid in QUESTIONS if qid in results] + sorted(set(results) - set(QUESTIONS))
    stats = []
    for qid in ordered:
        rows = results[qid]
        failures = Counter(_reason(r.message) for r in rows if not r.passed)
        reason, count = failures.most_common(1)[0] if failures else ("", 0)
        stats.append(QuestionStatistics(
            qid, len(rows), rows[0].max_points, sum(r.points for r in rows) / len(rows),
            sum(r.passed for r in rows) / len(rows), reason, count))
    return stats


def write_question_statistics(stats: Sequence[QuestionStatistics], path: str | Path, *, overwrite: bool = False) -> Path:
    """The statistics as a CSV: ``question, graded, max, mean, full_marks, common_failure, count``."""
    path = Path(path)
    with open_report(path, overwrite) as file:
        writer = csv.writer(file)
        writer.writerow(["question", "graded", "max", "mean", "full_marks", "common_failure", "count"])
        for s in stats:
            writer.writerow([s.question_id, s.graded, s.max_points, f"{s.mean_points:.2f}",
                             f"{s.full_marks:.2f}", s.common_failure[:300], s.common_failure_count])
    return path


def statistics_figure(stats: Sequence[QuestionStatistics]) -> Figure:
    """Per question: mean share of the points and share of students with full marks."""
    if not stats:
        raise ValueError("no questions to show: nothing was graded")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(stats) + 2), 3.8), layout="constrained")
    positions = range(len(stats))
    ax.bar([p - 0.2 for p in positions], [s.mean_points / s.max_points for s in stats], width=0.4,
           label="mean share of the points")
    ax.bar([p + 0.2 for p in positions], [s.full_marks for s in stats], width=0.4, label="share with full marks")
    ax.set_xticks(list(positions), [s.question_id for s in stats], rotation=30, ha="right")
    ax.set(ylim=(0, 1), ylabel="share of the class", title=f"per question, {stats[0].graded} submissions")
    ax.grid(alpha=0.3, axis="y")
    fig.legend(loc="outside lower center", ncol=2)
    plt.close(fig)
    return fig


def write_gradebook(scores_csv: str | Path, path: str | Path, *, overwrite: bool = False) -> Path:
    """A two-column CSV a learning-management system imports, made from the scores CSV (so a
    re-grade that updated some rows gives the whole class): ``identifier`` (the student name the
    grader used; map it to the LMS's username or e-mail column) and ``percentage`` (0–100, one
    decimal). Canvas's and Moodle's grade-book imports both ask which column is which."""
    rows = list(csv.DictReader(io.StringIO(read_regular(scores_csv).decode("utf-8"), newline="")))
    path = Path(path)
    with open_report(path, overwrite) as file:
        writer = csv.writer(file)
        writer.writerow(["identifier", "percentage"])
        for row in rows:
            total, most = float(row["total"] or 0), float(row["max"] or 0)
            writer.writerow([row["student"], f"{100 * total / most if most else 0.0:.1f}"])
    return path
