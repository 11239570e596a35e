"""The course's notebook format: the one definition every tool reads.

A solution notebook ``solutions/NN_name.ipynb`` (and the exercise released from it) is an
ordinary notebook with these conventions:

* its file name starts with the exercise number, two digits and ``_`` (:func:`file_number`);
* the notebook metadata holds ``{"vgcourse": {"assignment": "NN"}}`` (:func:`notebook_assignment`);
* each graded code cell's metadata holds ``{"vgcourse": {"question": "exNN.name", "points": 2}}``
  (:func:`cell_question`), with an id matching :data:`QUESTION_ID`;
* an answer sits between :data:`CODE_MARKERS` in code and :data:`MARKDOWN_MARKERS` in markdown;
  the exercise has :data:`WRITTEN_ANSWER` (markdown) or :func:`code_stub` (code) instead;
* a released exercise records ``{"vgcourse": {"release": {"fingerprint": ...}}}`` (:func:`fingerprint`).

``vgcourse release``, ``vgcourse workspace`` and the grader all read these names; no torch here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

QUESTION_ID = re.compile(r"^ex(\d\d)\.[a-z][a-z0-9_]*$")
"""Question ids look like ``ex03.hook``: the exercise number, a dot and a snake_case name."""
QUESTION_ID_RULE = "'ex01.snake_name' (ex, the two-digit assignment, a dot, then a-z, 0-9 and _)"

NUMBERED_FILE = re.compile(r"^(\d\d)_")
"""A course notebook's file name starts with its exercise number and ``_``: ``03_detection.ipynb``."""
HANDED_OUT_STEM = re.compile(r"^(\d\d)_[a-z0-9_]+$")
"""The whole stem of a handed-out file, like ``01_derivative_bounds``: number, ``_``, lowercase words."""

CODE_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
MARKDOWN_MARKERS = ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")
MARKER_WORDS = ("BEGIN SOLUTION", "END SOLUTION")
"""Text that looks like a marker; a line holding it must be exactly one of the markers."""
WRITTEN_ANSWER = "*Your answer here.*"

METADATA = "vgcourse"
"""The metadata key, on the notebook and on graded cells, under which the keys below live."""
ASSIGNMENT, QUESTION, POINTS, RELEASE, FINGERPRINT = "assignment", "question", "points", "release", "fingerprint"


def code_stub(question_id: str) -> list[str]:
    """The lines that replace a code answer in the exercise: it raises until answered."""
    return ["# YOUR CODE HERE", f'raise NotImplementedError("{question_id}: replace this line with your answer")']


def file_number(name: str | Path) -> str | None:
    """The exercise number a file name starts with (``"03"`` for ``03_detection.ipynb``), or ``None``."""
    match = NUMBERED_FILE.match(Path(name).name)
    return match.group(1) if match else None


def course_metadata(node: Any) -> dict:
    """The ``vgcourse`` metadata of a notebook or cell; ``{}`` when it has none or it is not a dict."""
    meta = node.get("metadata", {}).get(METADATA)
    return meta if isinstance(meta, dict) else {}


def notebook_assignment(nb: Any) -> Any:
    """The ``assignment`` in a notebook's metadata (the file is read, not trusted), or ``None``."""
    return course_metadata(nb).get(ASSIGNMENT)


def cell_question(cell: Any) -> tuple[Any, Any] | None:
    """``(question id, points)`` from a cell's metadata as written (unchecked), or ``None`` if it has no question."""
    meta = course_metadata(cell)
    return (meta[QUESTION], meta.get(POINTS)) if QUESTION in meta else None


def release_metadata(fingerprint_hex: str) -> dict:
    """What a released exercise records under ``metadata.vgcourse``."""
    return {RELEASE: {FINGERPRINT: fingerprint_hex}}


def recorded_fingerprint(nb: Any) -> str:
    """The fingerprint a released exercise records; ``KeyError`` or ``TypeError`` when it has none."""
    return nb["metadata"][METADATA][RELEASE][FINGERPRINT]


def fingerprint(nb: Any) -> str:
    """sha256 (hex) of the cell types, sources and ``vgcourse`` cell metadata of ``nb``.

    Outputs, execution counts and other metadata are left out: running a notebook is not changing it.
    """
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"expected a notebook (nbformat.NotebookNode), got {type(nb).__name__}")
    cells = [[cell.get("cell_type"), "".join(cell.get("source", "")),
              cell.get("metadata", {}).get(METADATA)] for cell in nb["cells"]]
    text = json.dumps(cells, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
