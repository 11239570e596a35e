"""``vgcourse grade``: the command line of the batch grader (:mod:`vgcourse.grading.batch`)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from vgcourse.grading.batch import find_submissions, grade_submissions
from vgcourse.grading.grade import STATUSES, SubmissionGrade
from vgcourse.grading.report import FeedbackFolder, ScoresFile, check_outputs, report_paths, summary_line
from vgcourse.grading.sandbox import INSTALL_HINT, sandbox_problem
from vgcourse.grading.statistics import (
    open_report, question_statistics, statistics_figure, write_gradebook, write_question_statistics,
)
from vgcourse.grading.submission_file import normalize_assignment


_EPILOG = """\
Each submission runs in its own fresh python3 kernel, in an empty temporary folder, on the CPU,
with its memory capped; the submitted file is never modified. The questions, points, random tests and reference
answers come from this installation of vgcourse, never from the submission: editing the check
cells or patching vgcourse inside the notebook changes nothing.

exercise:  --assignment if given, else the notebook's metadata, else an NN_ prefix of the file
           name, else the question ids in its cells. A learner can edit the metadata, so pass
           --assignment when grading one exercise.
student:   below a folder given, the folder the notebook is in (submissions/alice/x.ipynb -> alice)
           or the file name directly in it (submissions/alice.ipynb -> alice); for a file named
           alone, its name, or its folder's when it keeps the handed-out name
           (submissions/alice/01_derivative_bounds.ipynb -> alice). Repeated names get -2, -3, ...
           and a note; symlinked submissions are graded as malformed; names with control or
           bidi characters, . and .. are refused.
input:     notebooks, folders (every notebook below them, hidden folders such as
           .ipynb_checkpoints left out) or quoted patterns: vgcourse grade submissions/ ...
output:    the CSV (student, one column per question, total, max, status, error), a
           <student>.txt with each question's feedback, per-question statistics
           (<out>-questions.csv and a figure, <out>-questions.png) and a grade book for an LMS
           (<out>-gradebook.csv: identifier, percentage). Existing files are never replaced
           without --overwrite; with it, re-grading some students updates their rows and
           feedback and keeps everyone else's. Rows and feedback are written as each student is
           graded (atomically), so a killed grader leaves what it finished; symlinks or other
           odd files at --out or in the feedback folder are refused before grading.

status (the CSV's error column gives the reason):
""" + "\n".join(textwrap.fill(meaning, 100, initial_indent=f"  {status:<16} ", subsequent_indent=" " * 19)
                for status, meaning in STATUSES.items()) + """

Exit status: 0 when every submission was graded (whatever its score or status), 1 if the grader
itself failed on one ('grader error'), 2 for bad arguments or outputs that already exist.
Each kernel runs in a bubblewrap sandbox (vgcourse.grading.sandbox): no network, no other
submission, output or home folder in sight, nothing writable but its own session folder, and
no process left once its submission is graded. Without bwrap the grader refuses to run; with
--no-sandbox, submissions run with your permissions: only for code you trust, or in a container.
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
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run the kernels without the bubblewrap sandbox, with your permissions: "
                             "only for submissions you trust")


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
        submissions = find_submissions(args.submissions)
        students = [submission.student for submission in submissions]
        if not args.no_sandbox and (problem := sandbox_problem()):
            raise ValueError(f"the submissions' kernels cannot be sandboxed: {problem}; nothing was graded. "
                             f"To grade untrusted notebooks, {INSTALL_HINT} and check with 'vgcourse doctor'; "
                             "to run them with your own permissions anyway, pass --no-sandbox")
        check_outputs(args.out, feedback, students, overwrite=args.overwrite)  # before anything is graded
        scores = ScoresFile(args.out, overwrite=args.overwrite, students=students)
        letters = FeedbackFolder(feedback, students, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as error:
        print(f"vgcourse grade: error: {error}", file=sys.stderr)
        return 2

    def write(grade: SubmissionGrade) -> None:  # as soon as it is graded; a row means its feedback is there
        letters.add(grade)
        scores.add(grade)

    try:
        grades = grade_submissions(args.submissions, assignment=args.assignment,  # found as above
                                   cell_timeout=args.cell_timeout, timeout=args.timeout,
                                   memory_limit_mb=args.memory_limit, jobs=args.jobs, on_graded=write,
                                   sandboxed=not args.no_sandbox)
    except KeyboardInterrupt:
        print(f"vgcourse grade: interrupted; the submissions graded so far are in {args.out}", file=sys.stderr)
        return 130
    try:
        print(summary_line(grades, args.out))
        print("Per question, over the submissions graded now:")
        reports = _write_reports(grades, args.out, args.overwrite)
    except (FileExistsError, ValueError, OSError) as error:  # created or replaced by someone else while grading
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
