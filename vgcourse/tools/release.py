"""Exercises generated from solutions: ``vgcourse release``.

``solutions/NN_name.ipynb`` is the only hand-edited copy. Its answers sit between line markers::

    ### BEGIN SOLUTION                  (code cell with {"vgcourse": {"question": "ex01.x", "points": 2}})
    ### END SOLUTION
    <!-- BEGIN SOLUTION -->             (markdown cell: a written answer)
    <!-- END SOLUTION -->

The exercise is the same notebook with each block replaced by a placeholder and the outputs
cleared. It records a fingerprint of what it was generated with, so a later release can tell an
untouched exercise (safe to regenerate) from a learner's work (never overwritten without ``force``).
A learner's edited copy of the *current* release counts as up to date: there is nothing newer.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SOLUTION_NAME = re.compile(r"^(\d\d)_[^/\\]*\.ipynb$")
QUESTION_ID = re.compile(r"^ex(\d\d)\.[a-z][a-z0-9_]*$")  # the same rule as vgcourse.grading.question
CODE_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
MARKDOWN_MARKERS = ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")
WRITTEN_ANSWER = "*Your answer here.*"


class ReleaseError(ValueError):
    """A solution notebook that cannot be released; the message says where and what is allowed."""


def _replace_blocks(source: str, markers: tuple[str, str], placeholder: list[str]) -> str:
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    begin, end = markers
    out, opened = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        text = line.strip()
        if text not in markers and ("BEGIN SOLUTION" in text or "END SOLUTION" in text):
            raise ReleaseError(f"line {number}: {text!r} looks like a solution marker; write exactly "
                               f"{begin!r} or {end!r} alone on a line")
        if text == begin and opened is not None:
            raise ReleaseError(f"line {number}: {begin!r} inside the block opened on line {opened}; "
                               f"blocks cannot nest, close the first with {end!r}")
        if text == end and opened is None:
            raise ReleaseError(f"line {number}: {end!r} without a {begin!r} before it")
        if text == begin:
            opened, indent = number, line[: len(line) - len(line.lstrip())]
            out.extend(indent + row for row in placeholder)
        elif text == end:
            opened = None
        elif opened is None:
            out.append(line)
    if opened is not None:
        raise ReleaseError(f"line {opened}: the block opened here is never closed; add {end!r}")
    return "\n".join(out)


def strip_solutions(source: str, question_id: str) -> str:
    """``source`` of a code cell with every ``### BEGIN/END SOLUTION`` block replaced, at the
    block's indentation, by ``# YOUR CODE HERE`` and a ``raise NotImplementedError`` naming
    ``question_id``. Raises :class:`ReleaseError` for unclosed, nested or stray markers."""
    if not isinstance(question_id, str) or not QUESTION_ID.match(question_id):
        raise ValueError(f"question id {question_id!r} must look like 'ex01.snake_name'")
    stub = ["# YOUR CODE HERE", f'raise NotImplementedError("{question_id}: replace this line with your answer")']
    return _replace_blocks(source, CODE_MARKERS, stub)


def strip_written_answers(source: str) -> str:
    """``source`` of a markdown cell with every ``<!-- BEGIN/END SOLUTION -->`` block replaced by
    ``*Your answer here.*``."""
    return _replace_blocks(source, MARKDOWN_MARKERS, [WRITTEN_ANSWER])


def _check_notebook(nb: object) -> None:
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"expected a notebook (nbformat.NotebookNode), got {type(nb).__name__}")


def question_cells(nb: NotebookNode, name: str = "notebook") -> list[tuple[int, str, int]]:
    """``(cell_index, question_id, points)`` of every graded cell of ``nb``, in order.

    ``cell_index`` counts from 0; error messages (which start with ``name``) count cells from 1.
    Raises :class:`ReleaseError` for invalid ids or points, ids used twice, ids of another
    assignment than ``nb.metadata.vgcourse.assignment`` (when set), or metadata on a non-code cell.
    """
    _check_notebook(nb)
    assignment = (nb.get("metadata", {}).get("vgcourse") or {}).get("assignment")
    found: list[tuple[int, str, int]] = []
    for index, cell in enumerate(nb["cells"]):
        meta, where = cell.get("metadata", {}).get("vgcourse"), f"{name}, cell {index + 1}"
        if not isinstance(meta, dict) or "question" not in meta:
            continue
        qid, points = meta["question"], meta.get("points")
        if cell.get("cell_type") != "code":
            raise ReleaseError(f"{where}: question metadata is only allowed on code cells, "
                               f"this is a {cell.get('cell_type')} cell")
        match = QUESTION_ID.match(qid) if isinstance(qid, str) else None
        if match is None:
            raise ReleaseError(f"{where}: question id {qid!r} must look like 'ex01.snake_name' "
                               "(ex, the two-digit assignment, a dot, then a-z, 0-9 and _)")
        if assignment is not None and match.group(1) != assignment:
            raise ReleaseError(f"{where}: question id {qid!r} must start with 'ex{assignment}.' "
                               f"in assignment {assignment}")
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ReleaseError(f"{where}: points of {qid} must be a positive integer, got {points!r}")
        used = [other for other, other_id, _ in found if other_id == qid]
        if used:
            raise ReleaseError(f"{where}: question id {qid!r} is already used by cell {used[0] + 1}")
        found.append((index, qid, points))
    return found


def fingerprint(nb: NotebookNode) -> str:
    """sha256 (hex) of the cell types, sources and graded-question metadata of ``nb``.

    Outputs, execution counts and other metadata are left out: running a notebook is not changing it.
    """
    _check_notebook(nb)
    cells = [[cell.get("cell_type"), "".join(cell.get("source", "")),
              cell.get("metadata", {}).get("vgcourse")] for cell in nb["cells"]]
    text = json.dumps(cells, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_exercise(solution: NotebookNode, name: str) -> NotebookNode:
    """The exercise for the notebook ``solution``, read from the file ``name`` (a name or path).

    The solution is not modified. Raises :class:`ReleaseError` naming the file and cell when the
    solution breaks the format (see the module docstring and ``solutions/README.md``).
    """
    _check_notebook(solution)
    match = SOLUTION_NAME.match(Path(name).name) if isinstance(name, (str, Path)) else None
    if match is None:
        raise ReleaseError(f"{str(name)!r}: solution notebook names must start with two digits and '_', "
                           "like '03_detection.ipynb'")
    assignment = (solution.get("metadata", {}).get("vgcourse") or {}).get("assignment")
    if assignment != match.group(1):
        raise ReleaseError(f"{name}: notebook metadata must contain "
                           f'{{"vgcourse": {{"assignment": "{match.group(1)}"}}}}, found assignment {assignment!r}')
    questions = {index: qid for index, qid, _ in question_cells(solution, name)}
    exercise = copy.deepcopy(solution)
    for index, cell in enumerate(exercise.cells):
        qid, original = questions.get(index), cell.source
        try:
            if cell.cell_type == "markdown":
                cell.source = strip_written_answers(original)
            elif cell.cell_type == "code" and qid is not None:
                cell.source = strip_solutions(original, qid)
                if cell.source == original:
                    raise ReleaseError(f"question {qid} has no {CODE_MARKERS[0]!r} block, so the "
                                       "exercise would publish the answer")
            elif cell.cell_type == "code" and ("BEGIN SOLUTION" in original or "END SOLUTION" in original):
                raise ReleaseError(f"solution markers in a cell without question metadata; add "
                                   f'{{"vgcourse": {{"question": "ex{match.group(1)}.snake_name", "points": 1}}}} '
                                   "to the cell metadata")
        except ReleaseError as error:
            raise ReleaseError(f"{name}, cell {index + 1}: {error}") from None
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    exercise.metadata.setdefault("vgcourse", {})["release"] = {"fingerprint": fingerprint(exercise)}
    nbformat.validate(exercise)
    return exercise


@dataclass
class ReleaseReport:
    """What :func:`release` did, or with ``check=True`` would do, as lists of exercise paths."""

    written: list[Path] = field(default_factory=list)  # were missing
    updated: list[Path] = field(default_factory=list)  # regenerated: unedited, or edited and forced
    up_to_date: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # a learner's work, kept
    backups: dict[Path, Path] = field(default_factory=dict)  # exercise -> copy of the learner's version
    orphans: list[Path] = field(default_factory=list)  # NN_*.ipynb exercises with no solution, left alone
    check: bool = False

    @property
    def out_of_date(self) -> list[Path]:
        """Exercises that do not match their solution (after a release: the skipped ones)."""
        return sorted(self.written + self.updated + self.skipped) if self.check else list(self.skipped)


def _state(path: Path, new: NotebookNode) -> str:
    """"missing", "up to date", "unedited" (safe to regenerate) or "edited" (a learner's work)."""
    if not path.exists():
        return "missing"
    try:
        current = nbformat.read(path, as_version=4)
        if fingerprint(current) == fingerprint(new):
            return "up to date"
        recorded = current.metadata["vgcourse"]["release"]["fingerprint"]
        if recorded == fingerprint(new):
            return "up to date"  # the learner's work on the current release: nothing newer to give
        return "unedited" if recorded == fingerprint(current) else "edited"
    except Exception:  # unreadable, or no fingerprint: never assume it is ours to overwrite
        return "edited"


def _backup_path(path: Path) -> Path:
    backup, number = path.with_name(path.name + ".bak"), 1
    while backup.exists():
        number += 1
        backup = path.with_name(f"{path.name}.bak{number}")
    return backup


def _write(nb: NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")  # a crash never leaves half an exercise
    nbformat.write(nb, temporary, version=4)
    os.replace(temporary, path)


def release(solutions_dir: str | os.PathLike, exercises_dir: str | os.PathLike,
            force: bool = False, check: bool = False) -> ReleaseReport:
    """Write ``exercises_dir/NN_name.ipynb`` for every ``solutions_dir/NN_name.ipynb``.

    Args:
        force: also overwrite exercises a learner has edited, after copying each to a ``.bak`` file.
        check: write nothing; report what a release would do.
    Returns:
        a :class:`ReleaseReport`. Every solution is checked before anything is written, so a
        :class:`ReleaseError` leaves ``exercises_dir`` as it was.
    """
    solutions, exercises = Path(solutions_dir), Path(exercises_dir)
    if force and check:
        raise ValueError("force and check cannot be combined: check writes nothing")
    if not solutions.is_dir():
        raise ReleaseError(f"solutions directory {str(solutions)!r} does not exist")
    if exercises.resolve() == solutions.resolve():
        raise ReleaseError(f"exercises and solutions are the same directory {str(solutions)!r}")
    new: dict[str, NotebookNode] = {}
    for path in sorted(p for p in solutions.glob("*.ipynb") if p.is_file() and not p.name.startswith(".")):
        try:
            solution = nbformat.read(path, as_version=4)
            nbformat.validate(solution)
        except Exception as error:
            raise ReleaseError(f"{path}: not a valid notebook ({error})") from None
        new[path.name] = make_exercise(solution, str(path))
    report = ReleaseReport(check=check)
    for name, exercise in new.items():
        target = exercises / name
        state = _state(target, exercise)
        if state == "up to date" or (state == "edited" and not force):
            (report.up_to_date if state == "up to date" else report.skipped).append(target)
            continue
        (report.written if state == "missing" else report.updated).append(target)
        if not check:
            if state == "edited":
                report.backups[target] = _backup_path(target)
                shutil.copy2(target, report.backups[target])
            _write(exercise, target)
    if exercises.is_dir():
        report.orphans = sorted(p for p in exercises.glob("*.ipynb") if SOLUTION_NAME.match(p.name)
                                and p.name not in new)
    return report


def format_report(report: ReleaseReport) -> str:
    """What ``vgcourse release`` prints: a line per exercise that changed or needs attention, then
    a one-line summary."""
    total = len(report.written) + len(report.updated) + len(report.up_to_date) + len(report.skipped)
    if report.check:
        lines = [f"missing: {p}" for p in report.written]
        lines += [f"out of date: {p}" for p in report.updated]
        lines += [f"out of date, edited by hand (release would skip it): {p}" for p in report.skipped]
        lines += [f"no solution for: {p}" for p in report.orphans]
        summary = f"{len(lines)} not matching solutions/; run `vgcourse release`" if lines else "all up to date"
        return "\n".join(lines + [f"{total} exercises: {summary}"])
    lines = [f"wrote {p}" for p in report.written]
    for p in report.updated:
        backup = report.backups.get(p)
        lines.append(f"updated {p}" + (f" (your version is kept in {backup})" if backup else ""))
    lines += [f"skipped {p}: it has your changes; --force overwrites it after copying it to a .bak file"
              for p in report.skipped]
    lines += [f"note: {p} has no solution notebook; left as is" for p in report.orphans]
    summary = (f"{total} exercises: {len(report.written)} written, {len(report.updated)} updated, "
               f"{len(report.up_to_date)} up to date, {len(report.skipped)} skipped")
    return "\n".join(lines + [summary + (" (your changes kept; use --force)" if report.skipped else "")])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vgcourse release``."""
    parser.add_argument("--solutions", default="solutions", metavar="DIR",
                        help="the solution notebooks (default: ./solutions)")
    parser.add_argument("--exercises", default="exercises", metavar="DIR",
                        help="where the exercises go (default: ./exercises)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true",
                      help="also overwrite exercises you edited (each is first copied to a .bak file)")
    mode.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if any exercise is missing or out of date")
    parser.epilog = ("exit codes: 0 every exercise matches its solution; 1 some were skipped (your changes "
                     "kept) or, with --check, are missing, out of date or have no solution; 2 an error "
                     "(a solution breaks the format, or a directory is missing)")


def run_command(args: argparse.Namespace) -> int:
    """Run ``vgcourse release``; return the exit code (0 done, 1 skipped or out of date, 2 error)."""
    try:
        report = release(args.solutions, args.exercises, force=args.force, check=args.check)
    except (ReleaseError, OSError) as error:
        print(f"vgcourse release: error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 1 if report.out_of_date or (report.check and report.orphans) else 0
