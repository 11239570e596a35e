"""An exercise from its solution notebook: the answers replaced by placeholders, outputs cleared.

The format (markers, question metadata, file names) is :mod:`vgcourse.tools.notebook_format`;
this module checks a solution against it and writes the exercise. ``vgcourse release``
(:mod:`vgcourse.tools.release`) does it for a whole folder.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from vgcourse.tools.notebook_format import (
    ASSIGNMENT, CODE_MARKERS, MARKDOWN_MARKERS, MARKER_WORDS, METADATA, POINTS, QUESTION, QUESTION_ID,
    QUESTION_ID_RULE, WRITTEN_ANSWER, cell_question, code_stub, file_number, fingerprint, notebook_assignment,
    release_metadata,
)
from vgcourse.validation import is_int


class ReleaseError(ValueError):
    """A solution notebook that cannot be released; the message says where and what is allowed."""


def _replace_blocks(source: str, markers: tuple[str, str], placeholder: list[str]) -> str:
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    begin, end = markers
    out, opened = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        text = line.strip()
        if text not in markers and any(word in text for word in MARKER_WORDS):
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
    return _replace_blocks(source, CODE_MARKERS, code_stub(question_id))


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
    assignment = notebook_assignment(nb)
    found: list[tuple[int, str, int]] = []
    for index, cell in enumerate(nb["cells"]):
        where, question = f"{name}, cell {index + 1}", cell_question(cell)
        if question is None:
            continue
        qid, points = question
        if cell.get("cell_type") != "code":
            raise ReleaseError(f"{where}: question metadata is only allowed on code cells, "
                               f"this is a {cell.get('cell_type')} cell")
        match = QUESTION_ID.match(qid) if isinstance(qid, str) else None
        if match is None:
            raise ReleaseError(f"{where}: question id {qid!r} must look like {QUESTION_ID_RULE}")
        if assignment is not None and match.group(1) != assignment:
            raise ReleaseError(f"{where}: question id {qid!r} must start with 'ex{assignment}.' "
                               f"in assignment {assignment}")
        if not is_int(points) or points < 1:
            raise ReleaseError(f"{where}: points of {qid} must be a positive integer, got {points!r}")
        used = [other for other, other_id, _ in found if other_id == qid]
        if used:
            raise ReleaseError(f"{where}: question id {qid!r} is already used by cell {used[0] + 1}")
        found.append((index, qid, points))
    return found


def make_exercise(solution: NotebookNode, name: str) -> NotebookNode:
    """The exercise for the notebook ``solution``, read from the file ``name`` (a name or path).

    The solution is not modified. Raises :class:`ReleaseError` naming the file and cell when the
    solution breaks the format (see the module docstring and ``solutions/README.md``).
    """
    _check_notebook(solution)
    number = file_number(name) if isinstance(name, (str, Path)) else None
    if number is None or Path(name).suffix != ".ipynb":
        raise ReleaseError(f"{str(name)!r}: solution notebook names must start with two digits and '_', "
                           "like '03_detection.ipynb'")
    assignment = notebook_assignment(solution)
    if assignment != number:
        raise ReleaseError(f"{name}: notebook metadata must contain "
                           f'{{"{METADATA}": {{"{ASSIGNMENT}": "{number}"}}}}, found assignment {assignment!r}')
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
            elif cell.cell_type == "code" and any(word in original for word in MARKER_WORDS):
                raise ReleaseError(f"solution markers in a cell without question metadata; add "
                                   f'{{"{METADATA}": {{"{QUESTION}": "ex{number}.snake_name", "{POINTS}": 1}}}} '
                                   "to the cell metadata")
        except ReleaseError as error:
            raise ReleaseError(f"{name}, cell {index + 1}: {error}") from None
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    exercise.metadata.setdefault(METADATA, {}).update(release_metadata(fingerprint(exercise)))
    nbformat.validate(exercise)
    return exercise


