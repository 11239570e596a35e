"""The learner's own copy of the course: ``vgcourse workspace``, which ``make lab`` runs first.

A learner runs and edits notebooks in a workspace folder (``my-course/``, ignored by git), never in
the repository's ``notebooks/``, ``exercises/`` and ``solutions/``. So the tracked files never
change, ``git pull`` always brings the course's updates, and the next sync passes them on
without losing any of the learner's work:

- a course file the workspace lacks is copied in;
- a copy the learner has only *run* (its cells' sources as they were copied; outputs do not
  count, as in ``vgcourse release``) is replaced by the course's newer version;
- a copy the learner has *changed* is kept as it is, and the course's newer version is written
  beside it as ``NAME.course-update.ipynb``, for the learner to compare.

The workspace records, per file, the fingerprint of the course version it last received
(``.vgcourse-workspace.json``); that is how a learner's change is told from a course update.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from vgcourse.tools.notebook_format import fingerprint

FOLDERS = ("notebooks", "exercises", "solutions")
"""The course folders copied into a workspace, with the same names, so relative links still work."""
DEFAULT_WORKSPACE = Path("my-course")
MANIFEST = ".vgcourse-workspace.json"
UPDATE_SUFFIX = ".course-update"


@dataclass
class SyncReport:
    """What one :func:`sync_workspace` did, as paths inside the workspace."""

    copied: list[Path] = field(default_factory=list)
    updated: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, Path]] = field(default_factory=list)  # (the learner's file, the update beside it)
    up_to_date: int = 0

    def lines(self) -> list[str]:
        """One line per file that changed or was kept, then a count."""
        out = [f"copied   {path}" for path in self.copied]
        out += [f"updated  {path} (you had only run it)" for path in self.updated]
        out += [f"kept     {path}: you changed it; the course's new version is {update}" for path, update in self.kept]
        total = len(self.copied) + len(self.updated) + len(self.kept) + self.up_to_date
        out.append(f"{total} files: {len(self.copied)} copied, {len(self.updated)} updated, "
                   f"{len(self.kept)} kept with an update beside them, {self.up_to_date} up to date")
        return out


def _content_fingerprint(path: Path) -> str | None:
    """What counts as the file's content: a notebook's cell sources (not outputs), else its bytes;
    ``None`` when the notebook cannot be read (a learner's half-saved file counts as changed)."""
    if path.suffix == ".ipynb":
        try:
            return fingerprint(nbformat.read(path, as_version=4))
        except Exception:
            return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _course_files(course: Path) -> list[Path]:
    if not (course / "notebooks").is_dir():
        raise ValueError(f"{str(course)!r} is not the course folder: it has no notebooks/ folder")
    files = []
    for folder in FOLDERS:
        if (course / folder).is_dir():
            files += sorted(p.relative_to(course) for p in (course / folder).iterdir()
                            if p.is_file() and not p.name.startswith("."))
    return files


def _read_manifest(workspace: Path) -> dict[str, str]:
    path = workspace / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{str(path)!r} is not a workspace record; move it away and run again")
    return data


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # a sync cut short leaves the old file or the new one, never half of one


def _update_path(target: Path) -> Path:
    return target.with_name(target.stem + UPDATE_SUFFIX + target.suffix)


def sync_workspace(course: Path = Path("."), workspace: Path = DEFAULT_WORKSPACE) -> SyncReport:
    """Bring ``workspace`` up to date with the course in ``course``, never losing a learner's change.

    Args:
        course: the course folder (the repository), with ``notebooks/`` and usually
            ``exercises/`` and ``solutions/``.
        workspace: the learner's copy; created if missing. Must not be one of the course folders.

    Returns:
        a :class:`SyncReport` of what was copied, updated and kept.
    """
    course, workspace = Path(course), Path(workspace)
    files = _course_files(course)
    if workspace.exists() and not workspace.is_dir():
        raise ValueError(f"workspace {str(workspace)!r} exists and is not a folder")
    resolved = workspace.resolve()
    for folder in FOLDERS:
        inside = (course / folder).resolve()
        if resolved == inside or inside in resolved.parents:
            raise ValueError(f"the workspace cannot be inside the course's {folder}/ folder, got {str(workspace)!r}")
    manifest = _read_manifest(workspace)
    report = SyncReport()
    for relative in files:
        source, target, key = course / relative, workspace / relative, relative.as_posix()
        new = _content_fingerprint(source)
        if new is None:
            raise ValueError(f"the course notebook {str(source)!r} cannot be read")
        if not target.exists():
            _copy(source, target)
            report.copied.append(relative)
        elif manifest.get(key) == new:
            report.up_to_date += 1
            continue
        else:
            mine = _content_fingerprint(target)
            if mine == new:                       # already the course's version (outputs may differ)
                report.up_to_date += 1
            elif key in manifest and mine == manifest[key]:  # only run since it was copied
                _copy(source, target)
                report.updated.append(relative)
            else:                                  # the learner's work: keep it, put the update beside it
                _copy(source, _update_path(target))
                report.kept.append((relative, _update_path(relative)))
                continue                           # the record stays: it is still the learner's version
        manifest[key] = new
        workspace.mkdir(parents=True, exist_ok=True)
        _write_atomically(workspace / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vgcourse workspace``."""
    parser.add_argument("--course", type=Path, default=Path("."), metavar="DIR",
                        help="the course folder, with notebooks/ (default: the current folder)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_WORKSPACE, metavar="DIR",
                        help=f"your workspace (default: {DEFAULT_WORKSPACE})")


def run_command(args: argparse.Namespace) -> int:
    """``vgcourse workspace``: sync, print what happened; exit 2 with the reason on bad input."""
    try:
        report = sync_workspace(args.course, args.dir)
    except ValueError as error:
        print(f"vgcourse workspace: {error}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 0
