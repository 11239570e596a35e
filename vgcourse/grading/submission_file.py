"""A submitted file: read it safely, and tell whose it is and which exercise it answers.

Nothing here runs the submission; a file that cannot be graded raises :class:`MalformedSubmission`
with a reason for the learner. The naming rules are :mod:`vgcourse.tools.notebook_format`'s.
"""

from __future__ import annotations

import json
import os
import unicodedata
import warnings
from pathlib import Path

import nbformat
import nbformat.reader
from nbformat import NotebookNode

from vgcourse.grading.files import FileRefused, read_regular
from vgcourse.grading.grade import unsafe_character
from vgcourse.grading.registry import ASSIGNMENTS
from vgcourse.tools.notebook_format import (
    ASSIGNMENT, HANDED_OUT_STEM, QUESTION_ID, cell_question, course_metadata, file_number,
)

MAX_NOTEBOOK_BYTES = 100 * 2**20


class MalformedSubmission(ValueError):
    """The file cannot be graded; the message says why, for the learner."""


def student_name(path: str | Path, root: str | Path | None = None) -> str:
    """Whose submission ``path`` is: the folder it was handed in in, or the file when there is none.

    Below a folder of submissions ``root``, the student is the first folder under ``root``
    (``root/alice/anything.ipynb`` is ``alice``), or the file's stem for a notebook directly in
    ``root`` (``root/alice.ipynb``). Without ``root``, it is the stem, or the folder's name when
    the stem is an exercise's own name (``alice/01_derivative_bounds.ipynb``: two digits, ``_``
    and lowercase words). NFC-normalised (:func:`check_student_name`).

    Raises:
        ValueError: for a name that is empty, ``.``, ``..`` or holds control or bidi characters.
    """
    path = Path(path)
    if root is not None and path.parent != Path(root) and Path(root) in path.parents:
        name = path.relative_to(root).parts[0]
    elif root is None and HANDED_OUT_STEM.match(path.stem):
        name = Path(os.path.abspath(path)).parent.name or path.stem  # abspath: never through a symlink
    else:
        name = path.stem
    return check_student_name(name, path)


def check_student_name(name: str, path: str | Path) -> str:
    """``name`` NFC-normalised (so ``é`` typed two ways is one student); ValueError naming
    ``path`` if it is empty, ``.``, ``..``, or holds a control or bidirectional-formatting
    character (which could make it display as someone else's)."""
    name = unicodedata.normalize("NFC", name)
    if name.strip() in ("", ".", ".."):
        raise ValueError(f"{str(path)!r} gives the student name {name!r}, which is not a name; rename it")
    if (bad := unsafe_character(name)) is not None:
        raise ValueError(f"{str(path)!r} gives a student name with the character U+{ord(bad):04X} "
                         f"({unicodedata.name(bad, 'a control character')}); rename it")
    return name


def normalize_assignment(assignment: str | int) -> str:
    """``"03"`` from ``3``, ``"3"``, ``"03"`` or ``"ex03"``; ValueError unless it has questions."""
    text = str(assignment).strip().lower().removeprefix("ex")
    nn = text.zfill(2) if text.isdigit() else text
    if nn not in ASSIGNMENTS:
        raise ValueError(f"unknown exercise {assignment!r}; choose one of {list(ASSIGNMENTS)}")
    return nn


def read_submission(path: str | Path) -> NotebookNode:
    """The notebook at ``path`` (version 4, validated).

    Raises:
        MalformedSubmission: for an unreadable, empty, oversized, non-JSON or invalid file.
    """
    path = Path(path)
    if path.is_symlink():
        raise MalformedSubmission("the file is a symbolic link, not a notebook of its own; "
                                  "submissions must be regular files")
    try:
        # no-follow and non-blocking: a symlink or a FIFO swapped in must not redirect or block the grader
        text = read_regular(path, MAX_NOTEBOOK_BYTES).decode("utf-8")
    except FileRefused as refused:
        if not refused.regular:
            raise MalformedSubmission("the submission is not a regular file") from None
        limit = f"notebooks over {MAX_NOTEBOOK_BYTES // 2**20} MB are not graded"
        if refused.size is not None:
            limit = f"the file is {refused.size / 2**20:.0f} MB; {limit}"
        raise MalformedSubmission(limit) from None
    except UnicodeDecodeError:
        raise MalformedSubmission("the file is not UTF-8 text, so it is not a notebook") from None
    except OSError as error:
        raise MalformedSubmission(f"the file cannot be read ({error.strerror or error})") from None
    if not text.strip():
        raise MalformedSubmission("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedSubmission(f"the file is not valid JSON (line {error.lineno}: {error.msg}), "
                                  "so it is not a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise MalformedSubmission("the file is JSON but not a notebook (it has no 'nbformat' field)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. cells without ids, written by older Jupyter versions
        try:
            nb = nbformat.convert(nbformat.reader.reads(text), 4)
            nbformat.validate(nb)
        except Exception as error:  # nbformat raises many kinds for many kinds of damage
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise MalformedSubmission(f"the file is not a valid notebook ({first[:200]})") from None
    return nb


def submission_assignment(nb: NotebookNode, path: str | Path) -> str:
    """The exercise number of a submission: from its metadata, else its file name's ``NN_``
    prefix, else the question ids in its cells.

    Raises:
        MalformedSubmission: if none of them names an exercise with graded questions.
    """
    meta = course_metadata(nb)
    if ASSIGNMENT in meta:
        found, source = str(meta[ASSIGNMENT]), "the notebook's metadata"
    elif number := file_number(path):
        found, source = number, "the file name"
    else:
        ids = set()
        for cell in nb.cells:
            question = cell_question(cell)
            if question is not None and (match := QUESTION_ID.match(str(question[0]))):
                ids.add(match.group(1))
        if len(ids) != 1:
            raise MalformedSubmission("cannot tell which exercise this is; pass --assignment")
        found, source = ids.pop(), "the question ids in its cells"
    if found not in ASSIGNMENTS:
        raise MalformedSubmission(f"{source} names exercise {found!r}, which has no graded questions; "
                                  "pass --assignment")
    return found


