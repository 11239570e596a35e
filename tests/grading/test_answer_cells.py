"""vgcourse.grading.answer_cells: a submission's graded code is its imports and its answer cells."""

import nbformat

from vgcourse.grading.answer_cells import graded_cells

IDS, NAMES = ["ex01.double", "ex01.half"], ["double", "half"]


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        nb.cells.append(cell if isinstance(cell, nbformat.NotebookNode) else nbformat.v4.new_code_cell(cell))
    return nb


def marked(source, question):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["vgcourse"] = {"question": question, "points": 1}
    return cell


def test_answer_cells_run_whole_and_other_cells_only_their_imports():
    nb = notebook("import torch\nfrom torch import nn\nx = torch.zeros(3)\nprint(x)",
                  nbformat.v4.new_markdown_cell("import os"),
                  marked("def double(n):\n    return 2 * n", "ex01.double"),
                  "check('ex01.double', double)",
                  "import math; globals()['half'] = lambda n: n / 2",  # a generic cell: only its import runs
                  "def half(n):\n    return n / 2\n")  # an answer retyped into a cell without metadata
    cells = graded_cells(nb, IDS, NAMES)
    assert [(c.index, c.whole, c.source) for c in cells] == [
        (0, False, "import torch"),
        (0, False, "from torch import nn"),
        (2, True, "def double(n):\n    return 2 * n"),
        (4, False, "import math"),
        (5, True, "def half(n):\n    return n / 2\n"),
    ]
    assert [c.where for c in cells[1:3]] == ["an import of cell 1", "cell 3"]


def test_a_cell_that_binds_an_answer_name_is_an_answer_cell():
    for source in ("double = lambda n: 2 * n", "double: object = print", "from operator import mul as double",
                   "class half:\n    pass", "(double, half) = (1, 2)"):
        assert [c.whole for c in graded_cells(notebook(source), IDS, NAMES)] == [True], source


def test_magics_bad_syntax_and_other_assignments_run_nothing_but_a_marked_cell_runs_as_written():
    nb = notebook("%matplotlib inline\nimport numpy", "def oops(:", "other = 1", "",
                  marked("def double(n:\n", "ex01.double"), marked("x = 1", "ex09.other"))
    cells = graded_cells(nb, IDS, NAMES)
    assert [(c.index, c.whole, c.source) for c in cells] == [(0, False, "import numpy"), (4, True, "def double(n:\n")]
