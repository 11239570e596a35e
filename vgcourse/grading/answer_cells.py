"""Which of a submission's code the grading kernel runs: its imports and its answer cells.

A submission's answers are tested in a kernel that runs only what the answers need: each
**answer cell** whole (a cell the exercise marked with a question's id, or one that defines a
question's answer name), and from every other code cell just its top-level ``import``
statements, each on its own (so one that fails, such as an import of something the grading
kernel does not have, costs only itself), all in notebook order. The rest — experiments, plots, ``check()`` cells and
anything added to the notebook — never runs while answers are graded, so a cell that is no
answer cannot change how the answers are tested.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable

from nbformat import NotebookNode

from vgcourse.tools.notebook_format import cell_question


@dataclass(frozen=True)
class GradedCell:
    """Code the grading kernel runs: ``source`` from the notebook's cell ``index`` (0-based);
    ``whole`` for an answer cell, else one of that cell's import statements."""

    index: int
    source: str
    whole: bool

    @property
    def where(self) -> str:
        """How messages name it, e.g. ``"cell 4"`` or ``"an import of cell 1"``."""
        return f"cell {self.index + 1}" if self.whole else f"an import of cell {self.index + 1}"


def _python(source: str) -> ast.Module | None:
    """``source`` parsed as IPython runs it (magics become calls), or None if it is no Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _binds(tree: ast.Module, names: frozenset[str]) -> bool:
    """Whether a top-level statement of ``tree`` defines one of ``names``."""
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = {statement.name}
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            bound = {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            bound = {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
        else:
            continue
        if bound & names:
            return True
    return False


def graded_cells(nb: NotebookNode, question_ids: Iterable[str], answer_names: Iterable[str]) -> list[GradedCell]:
    """The code of ``nb`` the grading kernel runs, in order (see the module's docstring).

    Args:
        nb: the submitted notebook.
        question_ids: ids of the exercise's questions (an answer cell's metadata names one).
        answer_names: the names the answers are defined under.
    """
    ids, names = frozenset(question_ids), frozenset(answer_names)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or not isinstance(cell.get("source"), str) or not cell.source.strip():
            continue
        tree = _python(cell.source)
        marked = cell_question(cell)
        if (marked is not None and marked[0] in ids) or (tree is not None and _binds(tree, names)):
            cells.append(GradedCell(index, cell.source, whole=True))
        elif tree is not None:
            cells += [GradedCell(index, ast.unparse(statement), whole=False) for statement in tree.body
                      if isinstance(statement, (ast.Import, ast.ImportFrom))]
    return cells
