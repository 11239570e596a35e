"""``vgcourse release``: write ``exercises/`` from ``solutions/``.

``solutions/NN_name.ipynb`` is the only hand-edited copy; :func:`~vgcourse.tools.exercise.make_exercise`
turns each into its exercise (the format is :mod:`vgcourse.tools.notebook_format`). Every exercise
records a fingerprint of what it was generated with, so a later release can tell an untouched
exercise (safe to regenerate) from a learner's work (never overwritten without ``force``).
A learner's edited copy of the *current* release counts as up to date: there is nothing newer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from vgcourse.tools.exercise import ReleaseError, make_exercise
from vgcourse.tools.notebook_format import file_number, fingerprint, recorded_fingerprint


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
        recorded = recorded_fingerprint(current)
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
        report.orphans = sorted(p for p in exercises.glob("*.ipynb") if file_number(p.name) is not None
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
